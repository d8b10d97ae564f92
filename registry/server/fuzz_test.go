package server_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/re6st-bpf/re6st-bpf/registry/server"
)

var fuzzSeeds = []string{
	"/getCa",
	"/hello?client_prefix=0000000000000001&protocol=10",
	"/requestCertificate?token=&req=-----BEGIN+CERTIFICATE+REQUEST-----%0AAAAA%0A-----END+CERTIFICATE+REQUEST-----&location=FR,EU&ip=",
	"/requestToken?email=a%40example.com",
	"/getNetworkConfig?cn=0000000000000001",
	"/revoke?cn_or_serial=1%2F16",
	"/isToken?token=abc&token=abc",
	"/addToken?email=x@y&token=%ff",
	"/?=",
	"/getCa?&",
	"//",
	"/hello?client_prefix=&protocol=-1",
}

func FuzzParseRequest(f *testing.F) {
	for _, seed := range fuzzSeeds {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, uri string) {
		name, args, err := server.ParseRequest(uri)
		if err != nil {
			return
		}
		if !strings.HasPrefix(uri, "/"+name) {
			t.Fatalf("method %q not at the start of %q", name, uri)
		}
		for key := range args {
			if !strings.Contains(uri, "=") {
				t.Fatalf("argument %q parsed from %q without '='", key, uri)
			}
		}
	})
}

// FuzzServeHTTP sends arbitrary request lines to a live registry: every
// answer is a success or a refusal, never a server error.
func FuzzServeHTTP(f *testing.F) {
	for _, seed := range fuzzSeeds {
		f.Add(seed)
	}
	r := startRegistry(f, nil)
	f.Fuzz(func(t *testing.T, uri string) {
		if !strings.HasPrefix(uri, "/") || strings.ContainsAny(uri, " \r\n\x00") {
			return
		}
		req := httptest.NewRequest(http.MethodGet, "http://registry.test/", nil)
		req.RequestURI = uri
		req.RemoteAddr = "192.0.2.9:1234"
		recorder := httptest.NewRecorder()
		r.server.ServeHTTP(recorder, req)
		if recorder.Code >= 500 {
			t.Fatalf("%s → %d %s", uri, recorder.Code, recorder.Body.String())
		}
	})
}
