package server

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	"crypto/subtle"

	"github.com/re6st-bpf/re6st-bpf/registry/wire"
)

// MaxRequestURI bounds the request line: a CSR of an 8192-bit key,
// URL-encoded, stays well below.
const MaxRequestURI = 16 << 10

// httpError is a refusal with its status code and one-line message.
type httpError struct {
	status     int
	message    string
	retryAfter int // seconds, for 429
}

func (e *httpError) Error() string { return e.message }

func refuse(status int, format string, args ...any) error {
	return &httpError{status: status, message: fmt.Sprintf(format, args...)}
}

func errBadRequest(format string, args ...any) error {
	return refuse(http.StatusBadRequest, format, args...)
}

func errNotFound(format string, args ...any) error {
	return refuse(http.StatusNotFound, format, args...)
}

func errForbidden(format string, args ...any) error {
	return refuse(http.StatusForbidden, format, args...)
}

// call is one decoded request.
type call struct {
	args     map[string]string
	peer     netip.Addr // of the TCP connection
	local    netip.Addr // the registry's end of the TCP connection
	client   netip.Addr // peer, or the client a trusted proxy forwarded
	header   http.Header
	protocol int // of the caller's session, for cn calls
}

func (c *call) arg(name string) string { return c.args[name] }

type method struct {
	required []string
	optional []string
	private  bool
	handler  func(*Server, *call) ([]byte, error)
}

func (m method) authenticated() bool {
	for _, name := range m.required {
		if name == "cn" {
			return true
		}
	}
	return false
}

var methods map[string]method

func init() {
	methods = map[string]method{
		"hello":              {required: []string{"client_prefix"}, optional: []string{"protocol"}, handler: (*Server).hello},
		"requestToken":       {required: []string{"email"}, handler: (*Server).requestToken},
		"requestCertificate": {required: []string{"token", "req"}, optional: []string{"location", "ip"}, handler: (*Server).requestCertificate},
		"getCa":              {handler: (*Server).getCa},
		"getDh":              {required: []string{"cn"}, handler: (*Server).getDh},
		"getNetworkConfig":   {required: []string{"cn"}, handler: (*Server).getNetworkConfig},
		"getCountry":         {required: []string{"cn", "address"}, handler: (*Server).getCountry},
		"getBootstrapPeer":   {required: []string{"cn"}, handler: (*Server).getBootstrapPeer},
		"renewCertificate":   {required: []string{"cn"}, handler: (*Server).renewCertificate},
		"reportAddress":      {required: []string{"cn", "address"}, handler: (*Server).reportAddress},
		"isToken":            {required: []string{"token"}, private: true, handler: (*Server).isToken},
		"deleteToken":        {required: []string{"token"}, private: true, handler: (*Server).deleteToken},
		"addToken":           {required: []string{"email"}, optional: []string{"token"}, private: true, handler: (*Server).addToken},
		"revoke":             {required: []string{"cn_or_serial"}, private: true, handler: (*Server).revoke},
		"updateHMAC":         {private: true, handler: (*Server).updateHMAC},
		"getNodePrefix":      {required: []string{"email"}, private: true, handler: (*Server).getNodePrefix},
		"getIPv6Address":     {required: []string{"email"}, private: true, handler: (*Server).getIPv6Address},
		"getIPv4Information": {required: []string{"email"}, private: true, handler: (*Server).getIPv4Information},
		"versions":           {private: true, handler: (*Server).versions},
		"topology":           {private: true, handler: (*Server).topology},
		"listTokens":         {private: true, handler: (*Server).listTokens},
		"listPrefixes":       {private: true, handler: (*Server).listPrefixes},
	}
}

// ParseRequest splits a request URI "/method?args" into the method name
// and its arguments, strictly: every argument appears once, as name=value,
// and is known to the method; the required ones are present.
func ParseRequest(requestURI string) (string, map[string]string, error) {
	if len(requestURI) > MaxRequestURI {
		return "", nil, refuse(http.StatusRequestURITooLong, "request longer than %d bytes", MaxRequestURI)
	}
	path, query, _ := strings.Cut(requestURI, "?")
	name, ok := strings.CutPrefix(path, "/")
	if !ok {
		return "", nil, errBadRequest("request path must start with /")
	}
	m, known := methods[name]
	if !known {
		return "", nil, errNotFound("unknown method %q", name)
	}
	args := map[string]string{}
	if query != "" {
		for pair := range strings.SplitSeq(query, "&") {
			rawKey, rawValue, ok := strings.Cut(pair, "=")
			if !ok {
				return "", nil, errBadRequest("argument %q has no value", pair)
			}
			key, err1 := url.QueryUnescape(rawKey)
			value, err2 := url.QueryUnescape(rawValue)
			if err1 != nil || err2 != nil {
				return "", nil, errBadRequest("argument %q is not URL-encoded", pair)
			}
			if !m.accepts(key) {
				return "", nil, errBadRequest("%s takes no argument %q", name, key)
			}
			if _, dup := args[key]; dup {
				return "", nil, errBadRequest("argument %q given twice", key)
			}
			args[key] = value
		}
	}
	for _, required := range m.required {
		if _, ok := args[required]; !ok {
			return "", nil, errBadRequest("%s needs the argument %q", name, required)
		}
	}
	return name, args, nil
}

func (m method) accepts(key string) bool {
	for _, names := range [][]string{m.required, m.optional} {
		for _, name := range names {
			if name == key {
				return true
			}
		}
	}
	return false
}

// ServeHTTP answers one registry call.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	status, err := s.serve(w, r)
	event := s.cfg.Logger.Debug()
	if err != nil {
		event = s.cfg.Logger.Info().Str("error", err.Error())
		if status >= 500 {
			event = s.cfg.Logger.Error().Str("error", err.Error())
		}
	}
	event.Str("method", r.URL.Path).Str("peer", r.RemoteAddr).Int("status", status).Dur("took", time.Since(start)).Msg("request")
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) (int, error) {
	fail := func(err error) (int, error) {
		status := http.StatusInternalServerError
		message := "internal error"
		var refusal *httpError
		if errors.As(err, &refusal) {
			status, message = refusal.status, refusal.message
			if refusal.retryAfter > 0 {
				w.Header().Set("Retry-After", strconv.Itoa(refusal.retryAfter))
			}
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(status)
		fmt.Fprintln(w, message)
		return status, err
	}
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		return fail(refuse(http.StatusMethodNotAllowed, "only GET is served"))
	}
	name, args, err := ParseRequest(r.RequestURI)
	if err != nil {
		return fail(err)
	}
	m := methods[name]
	c := &call{args: args, header: r.Header}
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		c.peer, _ = netip.ParseAddr(host)
		c.peer = c.peer.Unmap()
	}
	if local, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
		if addrPort, err := netip.ParseAddrPort(local.String()); err == nil {
			c.local = addrPort.Addr().Unmap()
		}
	}
	c.client = s.resolveClient(c.peer, r.Header)
	if m.private {
		if err := s.checkOrigin(c); err != nil {
			return fail(err)
		}
	}
	var responseKey []byte
	if m.authenticated() {
		if responseKey, err = s.authenticate(c, r.RequestURI, r.Header.Get(wire.HMACHeader)); err != nil {
			return fail(err)
		}
	}
	body, err := m.handler(s, c)
	if err != nil {
		return fail(err)
	}
	if responseKey != nil {
		w.Header().Set(wire.HMACHeader, base64.StdEncoding.EncodeToString(wire.ResponseMAC(responseKey, body)))
	}
	if len(body) == 0 {
		w.WriteHeader(http.StatusNoContent)
		return http.StatusNoContent, nil
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	w.Write(body)
	return http.StatusOK, nil
}

func (s *Server) isAuthorized(addr netip.Addr) bool {
	for _, allowed := range s.cfg.AuthorizedOrigins {
		if allowed.Unmap() == addr.Unmap() {
			return true
		}
	}
	return false
}

// forwardedFor is the header naming the hops a request went through.
const forwardedFor = "X-Forwarded-For"

func (s *Server) isTrustedProxy(addr netip.Addr) bool {
	for _, proxy := range s.cfg.TrustedProxies {
		if proxy.Contains(addr) {
			return true
		}
	}
	return false
}

// resolveClient returns the address of the client: the peer, unless it is
// a trusted proxy; then the right-most hop of X-Forwarded-For, across all
// its lines and commas, that is not a trusted proxy (the hops left of it
// were written by the client and prove nothing). An unparsable hop is the
// invalid address; if every hop is a trusted proxy, the left-most.
func (s *Server) resolveClient(peer netip.Addr, header http.Header) netip.Addr {
	client := peer
	if !s.isTrustedProxy(client) {
		return client
	}
	lines := header.Values(forwardedFor)
	for i := len(lines) - 1; i >= 0; i-- {
		hops := strings.Split(lines[i], ",")
		for j := len(hops) - 1; j >= 0; j-- {
			hop, err := netip.ParseAddr(strings.TrimSpace(hops[j]))
			if err != nil {
				return netip.Addr{}
			}
			if client = hop.Unmap(); !s.isTrustedProxy(client) {
				return client
			}
		}
	}
	return client
}

// checkOrigin allows a private call only from an authorized client. A
// forwarded request from a peer that is not a trusted proxy is refused:
// its real client is unknown (e.g. a local proxy not declared).
func (s *Server) checkOrigin(c *call) error {
	if len(c.header.Values(forwardedFor)) > 0 && !s.isTrustedProxy(c.peer) {
		return errForbidden("private method: %s forwarded by %s, which is not a trusted proxy (--trusted-proxy)", forwardedFor, c.peer)
	}
	if !c.client.IsValid() || !s.isAuthorized(c.client) {
		return errForbidden("private method: client %s is not an authorized origin", c.client)
	}
	return nil
}

// authenticate checks the request MAC against the session keys of the
// node and advances its hash chain. It returns the key the request was
// made with, from which the MAC of the answer is derived.
func (s *Server) authenticate(c *call, requestURI, header string) ([]byte, error) {
	if header == "" {
		return nil, errBadRequest("missing %s header", wire.HMACHeader)
	}
	mac, err := base64.StdEncoding.DecodeString(header)
	if err != nil {
		return nil, errBadRequest("%s header is not base64", wire.HMACHeader)
	}
	prefix := c.arg("cn")
	s.sessionsMu.Lock()
	defer s.sessionsMu.Unlock()
	sess := s.sessions[prefix]
	if sess == nil {
		return nil, refuse(http.StatusUnauthorized, "no session for %q: call hello first", prefix)
	}
	matches := func(key []byte) bool {
		return key != nil && subtle.ConstantTimeCompare(mac, wire.RequestMAC(key, requestURI)) == 1
	}
	key := sess.chain
	switch {
	case matches(key):
	case sess.pending != nil && s.cfg.Now().Before(sess.pending.expires) && matches(sess.pending.secret):
		key = sess.pending.secret
		sess.protocol = sess.pending.protocol
		sess.pending = nil
	default:
		return nil, errBadRequest("wrong HMAC")
	}
	sess.chain = wire.NextKey(key)
	c.protocol = sess.protocol
	return key, nil
}
