package client

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"runtime"
	"strings"
	"time"

	"github.com/re6st-bpf/re6st-bpf/registry/wire"
)

// UserAgent is sent with every request.
var UserAgent = fmt.Sprintf("re6st-bpf/%d, %s", 10, runtime.GOOS)

// MaxResponseSize bounds what is read from the registry.
const MaxResponseSize = 4 << 20

// Error is a refusal from the registry.
type Error struct {
	Method  string
	Status  int
	Message string
}

func (e *Error) Error() string {
	if e.Message == "" {
		return fmt.Sprintf("registry %s: %s", e.Method, http.StatusText(e.Status))
	}
	return fmt.Sprintf("registry %s: %s (%d)", e.Method, e.Message, e.Status)
}

// StatusOf returns the HTTP status of a registry refusal, or 0.
func StatusOf(err error) int {
	var e *Error
	if errors.As(err, &e) {
		return e.Status
	}
	return 0
}

// ErrInvalidToken is returned by RequestCertificate when the registry does
// not know the token.
var ErrInvalidToken = errors.New("invalid or expired token")

// Client talks to one registry.
type Client struct {
	base string // scheme://host[/path] without a trailing slash
	http *http.Client
}

// New returns a client for a registry URL (http or https). httpClient may
// be nil for a default one with a 60 s timeout; pass one to set TLS roots.
func New(registryURL string, httpClient *http.Client) (*Client, error) {
	u, err := url.Parse(registryURL)
	if err != nil {
		return nil, fmt.Errorf("registry URL %q: %w", registryURL, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("registry URL %q: must be http://host[:port][/path] or https://...", registryURL)
	}
	if httpClient == nil {
		httpClient = &http.Client{Timeout: 60 * time.Second}
	}
	return &Client{base: strings.TrimSuffix(u.String(), "/"), http: httpClient}, nil
}

// arg is one query argument; order is kept.
type arg struct{ name, value string }

// query builds "/method?name=value&..." as re6st's client does.
func query(method string, args []arg) string {
	q := "/" + method
	for i, a := range args {
		if i == 0 {
			q += "?"
		} else {
			q += "&"
		}
		q += url.QueryEscape(a.name) + "=" + url.QueryEscape(a.value)
	}
	return q
}

// do sends one request; mac, if not nil, goes in the HMAC header. It
// returns the body and the response MAC header.
func (c *Client) do(ctx context.Context, method, pathAndQuery string, mac []byte) ([]byte, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+pathAndQuery, nil)
	if err != nil {
		return nil, "", err
	}
	req.Header.Set("User-Agent", UserAgent)
	if mac != nil {
		req.Header.Set(wire.HMACHeader, base64.StdEncoding.EncodeToString(mac))
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, "", fmt.Errorf("registry %s: %w", method, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxResponseSize))
	if err != nil {
		return nil, "", fmt.Errorf("registry %s: %w", method, err)
	}
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusNoContent {
		return nil, "", &Error{Method: method, Status: resp.StatusCode, Message: strings.TrimSpace(firstLine(string(body)))}
	}
	return body, resp.Header.Get(wire.HMACHeader), nil
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	if len(line) > 200 {
		line = line[:200]
	}
	return line
}

func (c *Client) call(ctx context.Context, method string, args ...arg) ([]byte, error) {
	body, _, err := c.do(ctx, method, query(method, args), nil)
	return body, err
}

// GetCA returns the PEM certificate of the network CA.
func (c *Client) GetCA(ctx context.Context) ([]byte, error) {
	return c.call(ctx, "getCa")
}

// RequestToken asks the registry to mail a token to email.
func (c *Client) RequestToken(ctx context.Context, email string) error {
	_, err := c.call(ctx, "requestToken", arg{"email", email})
	return err
}

// RequestCertificate sends a CSR with a token ("" for an anonymous
// registration) and an optional location "CC,CONT"; it returns the PEM
// certificate.
func (c *Client) RequestCertificate(ctx context.Context, token string, csrPEM []byte, location string) ([]byte, error) {
	cert, err := c.call(ctx, "requestCertificate", arg{"token", token}, arg{"req", string(csrPEM)}, arg{"location", location}, arg{"ip", ""})
	if err == nil && len(cert) == 0 {
		return nil, ErrInvalidToken
	}
	return cert, err
}

// AddToken adds a token for email (private call); with token "" the
// registry makes one and it is returned.
func (c *Client) AddToken(ctx context.Context, email, token string) (string, error) {
	args := []arg{{"email", email}}
	if token != "" {
		args = append(args, arg{"token", token})
	}
	made, err := c.call(ctx, "addToken", args...)
	if token == "" {
		token = string(made)
	}
	return token, err
}

// IsToken reports whether the registry knows token (private call).
func (c *Client) IsToken(ctx context.Context, token string) (bool, error) {
	answer, err := c.call(ctx, "isToken", arg{"token", token})
	return string(answer) == "1", err
}

// DeleteToken deletes a token (private call).
func (c *Client) DeleteToken(ctx context.Context, token string) error {
	_, err := c.call(ctx, "deleteToken", arg{"token", token})
	return err
}

// Revoke revokes a certificate by decimal serial or by CN "n/len"
// (private call).
func (c *Client) Revoke(ctx context.Context, cnOrSerial string) error {
	_, err := c.call(ctx, "revoke", arg{"cn_or_serial", cnOrSerial})
	return err
}

// UpdateHMAC advances the Babel key rotation (private call).
func (c *Client) UpdateHMAC(ctx context.Context) error {
	_, err := c.call(ctx, "updateHMAC")
	return err
}

// NodePrefix returns the CN of the node registered with email, "" if none.
func (c *Client) NodePrefix(ctx context.Context, email string) (string, error) {
	answer, err := c.call(ctx, "getNodePrefix", arg{"email", email})
	return string(answer), err
}

// IPv6Address returns the subnet address of the node registered with
// email, "" if none.
func (c *Client) IPv6Address(ctx context.Context, email string) (string, error) {
	answer, err := c.call(ctx, "getIPv6Address", arg{"email", email})
	return string(answer), err
}

// IPv4Information returns the first advertised IP of the node registered
// with email, asked live through the registry's node.
func (c *Client) IPv4Information(ctx context.Context, email string) (string, error) {
	answer, err := c.call(ctx, "getIPv4Information", arg{"email", email})
	return string(answer), err
}

// Versions returns {prefix: "version, platform"}, nil for nodes that did
// not answer.
func (c *Client) Versions(ctx context.Context) (map[string]*string, error) {
	var versions map[string]*string
	return versions, c.callJSON(ctx, "versions", &versions)
}

// Topology returns {CN: [CNs of the peers it connects to as a client], "":
// [CNs of the nodes that answered]}.
func (c *Client) Topology(ctx context.Context) (map[string][]string, error) {
	var graph map[string][]string
	return graph, c.callJSON(ctx, "topology", &graph)
}

// Token is a registration token as listTokens returns it.
type Token struct {
	Token     string `json:"token"`
	Email     string `json:"email"`
	PrefixLen int    `json:"prefix_len"`
	Date      int64  `json:"date"`
}

// ListTokens lists the pending tokens (private call, re6st-bpf only).
func (c *Client) ListTokens(ctx context.Context) ([]Token, error) {
	var tokens []Token
	return tokens, c.callJSON(ctx, "listTokens", &tokens)
}

// Prefix is a block of the network as listPrefixes returns it.
type Prefix struct {
	Prefix    string    `json:"prefix"`
	Subnet    string    `json:"subnet"`
	State     string    `json:"state"`
	CN        string    `json:"cn,omitempty"`
	Email     string    `json:"email,omitempty"`
	Serial    uint64    `json:"serial,omitempty"`
	NotBefore time.Time `json:"not_before,omitzero"` // issued or last renewed
	NotAfter  time.Time `json:"not_after,omitzero"`
	Revoked   bool      `json:"revoked,omitempty"`
	Registry  bool      `json:"registry,omitempty"`
	Addresses string    `json:"addresses,omitempty"`
	Source    string    `json:"source,omitempty"` // enrolment's client address, known since the registry started
}

// ListPrefixes lists every block of the network: free, reserved or issued
// (private call, re6st-bpf only).
func (c *Client) ListPrefixes(ctx context.Context) ([]Prefix, error) {
	var prefixes []Prefix
	return prefixes, c.callJSON(ctx, "listPrefixes", &prefixes)
}

func (c *Client) callJSON(ctx context.Context, method string, into any) error {
	body, err := c.call(ctx, method)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(body, into); err != nil {
		return fmt.Errorf("registry %s: bad JSON answer: %w", method, err)
	}
	return nil
}
