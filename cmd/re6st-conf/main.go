package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/re6st-bpf/re6st-bpf/internal/secfile"
	"github.com/re6st-bpf/re6st-bpf/internal/version"
	"github.com/re6st-bpf/re6st-bpf/registry/atfile"
	"github.com/re6st-bpf/re6st-bpf/registry/ca"
	"github.com/re6st-bpf/re6st-bpf/registry/client"
	"github.com/re6st-bpf/re6st-bpf/registry/server"
	"github.com/re6st-bpf/re6st-bpf/registry/wire"
)

type options struct {
	registry, fingerprint string
	dir                   string
	caOnly, anonymous     bool
	isNeeded              bool
	email, token          string
	location              string
	req                   []string
}

func main() {
	cmd := command(os.Stdin)
	args, err := atfile.Expand(os.Args[1:], atfile.Spec{Flags: []*pflag.FlagSet{cmd.Flags()}, Arity: map[string]int{"req": 2}})
	if err != nil {
		fmt.Fprintln(os.Stderr, "re6st-conf:", err)
		os.Exit(2)
	}
	cmd.SetArgs(args)
	if err := cmd.Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "re6st-conf:", err)
		os.Exit(1)
	}
}

func command(stdin io.Reader) *cobra.Command {
	var o options
	cmd := &cobra.Command{
		Use:   "re6st-conf --registry URL [flags]",
		Short: "Enrol this machine in a re6st network",
		Long: `re6st-conf enrols a node in a re6st network. It downloads the network CA from
the registry (compare its fingerprint with --fingerprint ALG:HEX, given by the
network's operator), obtains a token (by e-mail with --email, or --token if you
have one, or none with --anonymous where the registry allows it), makes an RSA
key of the CA key's size and a certificate request, and writes into --dir:
  ca.crt  cert.crt  cert.key (mode 0600)  re6stnet.conf
The directory is created 0700; an existing cert.key readable by others is
made 0600 with a warning.
An existing cert.key is reused, and the subject fields of an existing cert.crt
are kept. Options may come from files: "@FILE", one "name value" per line.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Args:          cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return enrol(cmd.Context(), o, bufio.NewReader(stdin), cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.registry, "registry", "", "registry URL, e.g. http://re6st.example.com/ (required)")
	f.StringVar(&o.fingerprint, "fingerprint", "", "expected CA fingerprint ALG:HEX, e.g. sha256:ab12...")
	f.StringVarP(&o.dir, "dir", "d", ".", "directory for the files written")
	f.BoolVar(&o.caOnly, "ca-only", false, "only fetch (or refresh) ca.crt")
	f.BoolVar(&o.isNeeded, "is-needed", false, "only check the CA, then exit with an error if this host already routes the network through re6st (a node runs here, or we are behind a re6st router)")
	f.StringVar(&o.email, "email", "", "e-mail address to receive the token")
	f.StringVar(&o.token, "token", "", "token already received")
	f.BoolVar(&o.anonymous, "anonymous", false, "register without a token")
	f.StringVar(&o.location, "location", "", "location CC,CONT (country and continent codes, e.g. FR,EU) for the registry's communities")
	f.StringArrayVarP(&o.req, "req", "r", nil, `extra subject field "KEY VALUE" (C, ST, L, O, OU, emailAddress; CN and serialNumber are reserved)`)
	version.AddFlag(cmd)
	cmd.MarkFlagRequired("registry")
	return cmd
}

func enrol(ctx context.Context, o options, stdin *bufio.Reader, stdout, stderr io.Writer) error {
	if o.anonymous && (o.token != "" || o.email != "") {
		return errors.New("--anonymous cannot be combined with --token or --email")
	}
	fields, err := subjectFields(o.req)
	if err != nil {
		return err
	}
	registry, err := client.New(o.registry, nil)
	if err != nil {
		return err
	}
	caPEM, err := registry.GetCA(ctx)
	if err != nil {
		return err
	}
	caCert, err := ca.ParseCertificate(caPEM)
	if err != nil {
		return fmt.Errorf("the registry's CA: %w", err)
	}
	if o.fingerprint != "" {
		if err := ca.CheckFingerprint(caCert.Raw, o.fingerprint); err != nil {
			return err
		}
	} else {
		fmt.Fprintln(stderr, "WARNING: the CA was not checked (no --fingerprint); anyone between you and the registry could have replaced it")
	}
	network, err := wire.NetworkFromSerial(caCert.SerialNumber)
	if err != nil {
		return fmt.Errorf("the registry's CA: %w", err)
	}
	if o.isNeeded {
		return checkNeeded(network)
	}
	if err := privateDir(o.dir, stderr); err != nil {
		return err
	}
	path := func(name string) string { return filepath.Join(o.dir, name) }
	if err := writeAtomically(path("ca.crt"), caPEM, 0o644); err != nil {
		return err
	}
	if o.caOnly {
		return nil
	}

	key, err := loadOrCreateKey(path("cert.key"), caCert, stderr)
	if err != nil {
		return err
	}
	if existing, err := os.ReadFile(path("cert.crt")); err == nil {
		if cert, err := ca.ParseCertificate(existing); err == nil {
			fields = mergeFields(ca.SubjectFieldsOf(cert), fields)
		}
	}
	csr, err := ca.NewRequest(key, fields)
	if err != nil {
		return err
	}

	token := o.token
	if !o.anonymous && token == "" {
		email := o.email
		if email == "" {
			if email, err = prompt(stdin, stdout, "Please enter your e-mail address: "); err != nil {
				return err
			}
		}
		if err := registry.RequestToken(ctx, email); err != nil {
			return explain(err)
		}
		fmt.Fprintf(stdout, "A token was sent to %s.\n", email)
		if token, err = prompt(stdin, stdout, "Please enter your token: "); err != nil {
			return err
		}
	}
	certPEM, err := registry.RequestCertificate(ctx, token, csr, o.location)
	if err != nil {
		return explain(err)
	}
	cert, err := ca.ParseCertificate(certPEM)
	if err != nil {
		return fmt.Errorf("the registry answered with no certificate: %w", err)
	}
	if err := cert.CheckSignatureFrom(caCert); err != nil {
		return fmt.Errorf("the certificate received is not signed by the CA: %w", err)
	}
	if !key.PublicKey.Equal(cert.PublicKey) {
		return errors.New("the certificate received is not for our key")
	}
	if err := writeAtomically(path("cert.crt"), certPEM, 0o644); err != nil {
		return err
	}
	if err := writeConfig(path("re6stnet.conf"), o, path); err != nil {
		return err
	}
	prefix, err := ca.NodePrefix(cert)
	if err != nil {
		return err
	}
	subnet, err := wire.Subnet(network, prefix)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "Your subnet: %s (CN=%s)\n", subnet, cert.Subject.CommonName)
	fmt.Fprintf(stdout, "Certificate valid until %s; it is renewed automatically from %s.\n",
		cert.NotAfter.UTC().Format("2006-01-02 15:04 MST"), cert.NotAfter.Add(-server.RenewPeriod).UTC().Format("2006-01-02"))
	return nil
}

func subjectFields(pairs []string) ([]ca.SubjectField, error) {
	var fields []ca.SubjectField
	for _, pair := range pairs {
		key, value, ok := strings.Cut(pair, " ")
		if !ok {
			return nil, fmt.Errorf(`--req %q: expected "KEY VALUE"`, pair)
		}
		fields = append(fields, ca.SubjectField{Key: key, Value: value})
	}
	return fields, nil
}

// mergeFields keeps the existing certificate's subject fields, replaced by
// those of -r with the same key, as re6st does; an empty -r value removes a
// field.
func mergeFields(existing, given []ca.SubjectField) []ca.SubjectField {
	var out []ca.SubjectField
	for _, f := range existing {
		if !slices.ContainsFunc(given, func(g ca.SubjectField) bool { return g.Key == f.Key }) {
			out = append(out, f)
		}
	}
	for _, g := range given {
		if g.Value != "" {
			out = append(out, g)
		}
	}
	return out
}

// explain turns a registry refusal into the message a user needs.
func explain(err error) error {
	switch {
	case errors.Is(err, client.ErrInvalidToken):
		return errors.New("invalid or expired token")
	case client.StatusOf(err) == http.StatusForbidden:
		return fmt.Errorf("the registry refused: %w", err)
	}
	return err
}

func prompt(stdin *bufio.Reader, stdout io.Writer, question string) (string, error) {
	fmt.Fprint(stdout, question)
	answer, err := stdin.ReadString('\n')
	answer = strings.TrimSpace(answer)
	if answer == "" {
		if err == nil || errors.Is(err, io.EOF) {
			return "", errors.New("no answer given")
		}
		return "", err
	}
	return answer, nil
}

// privateDir creates dir 0700 whatever the umask. An existing directory is
// not changed (it may be shared, e.g. the current one), but a warning says
// if others can list it.
func privateDir(dir string, stderr io.Writer) error {
	was, err := secfile.Dir(dir)
	if was != 0 {
		fmt.Fprintf(stderr, "WARNING: %s is mode %04o: other users can list it (chmod 700 to prevent it)\n", dir, was)
	}
	return err
}

// loadOrCreateKey reads the node key at path, tightening its mode to 0600
// with a warning if others could read it, or makes a new one of the CA
// key's size.
func loadOrCreateKey(path string, caCert *x509.Certificate, stderr io.Writer) (*rsa.PrivateKey, error) {
	if was, err := secfile.Tighten(path); err != nil {
		return nil, err
	} else if was != 0 {
		fmt.Fprintf(stderr, "WARNING: %s was readable by other users (mode %04o): made %04o\n", path, was, was&^0o077)
	}
	if data, err := os.ReadFile(path); err == nil {
		key, err := ca.ParsePrivateKey(data)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		return key, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	caKey, ok := caCert.PublicKey.(*rsa.PublicKey)
	if !ok {
		return nil, errors.New("the CA key is not RSA")
	}
	key, keyPEM, err := ca.NewKey(caKey.N.BitLen())
	if err != nil {
		return nil, err
	}
	return key, writeAtomically(path, keyPEM, 0o600)
}

func writeConfig(path string, o options, file func(string) string) error {
	if _, err := os.Stat(path); err == nil {
		return nil // the user's own configuration is kept
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "registry %s\nca %s\ncert %s\nkey %s\n", o.registry, file("ca.crt"), file("cert.crt"), file("cert.key"))
	if country, _, _ := strings.Cut(o.location, ","); country != "" {
		fmt.Fprintf(&b, "country %s\n", country)
	}
	return writeAtomically(path, b.Bytes(), 0o644)
}

// writeAtomically replaces path with data: a crash leaves the old file or
// the new one, never a mix.
func writeAtomically(path string, data []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
