package mail

import (
	"crypto/tls"
	"fmt"
	"net"
	"net/smtp"
	"os"
	"strings"
	"sync"
	"time"
)

// Sender delivers one message.
type Sender interface {
	Send(to, subject, body string) error
}

// New returns the sender for a mail host: an mbox file if mailhost looks
// like a path (contains a "/"), an SMTP server (host or host:port, port 25
// by default) otherwise. from is the sender address, may be empty.
func New(mailhost, from, user, password string, startTLS bool) Sender {
	if strings.Contains(mailhost, "/") {
		return &Mbox{Path: mailhost, From: from}
	}
	return &SMTP{Host: mailhost, From: from, User: user, Password: password, StartTLS: startTLS}
}

func message(from, to, subject, body string, date time.Time) string {
	var b strings.Builder
	if from != "" {
		fmt.Fprintf(&b, "From: %s\r\n", from)
	}
	fmt.Fprintf(&b, "To: %s\r\nSubject: %s\r\nDate: %s\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n%s",
		to, subject, date.Format(time.RFC1123Z), strings.ReplaceAll(body, "\n", "\r\n"))
	return b.String()
}

// SMTP sends through an SMTP server.
type SMTP struct {
	Host, From, User, Password string
	StartTLS                   bool
}

// Send implements Sender.
func (s *SMTP) Send(to, subject, body string) error {
	address := s.Host
	if _, _, err := net.SplitHostPort(address); err != nil {
		address = net.JoinHostPort(address, "25")
	}
	host, _, _ := net.SplitHostPort(address)
	client, err := smtp.Dial(address)
	if err != nil {
		return fmt.Errorf("SMTP %s: %w", address, err)
	}
	defer client.Close()
	if s.StartTLS {
		if err := client.StartTLS(&tls.Config{ServerName: host}); err != nil {
			return fmt.Errorf("SMTP STARTTLS: %w", err)
		}
	}
	if s.User != "" {
		if err := client.Auth(smtp.PlainAuth("", s.User, s.Password, host)); err != nil {
			return fmt.Errorf("SMTP login: %w", err)
		}
	}
	if err := client.Mail(s.From); err != nil {
		return err
	}
	if err := client.Rcpt(to); err != nil {
		return err
	}
	w, err := client.Data()
	if err != nil {
		return err
	}
	if _, err := w.Write([]byte(message(s.From, to, subject, body, time.Now()))); err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	return client.Quit()
}

// Mbox appends messages to an mbox file.
type Mbox struct {
	Path, From string
	mu         sync.Mutex
}

// Send implements Sender.
func (m *Mbox) Send(to, subject, body string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	f, err := os.OpenFile(m.Path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	now := time.Now()
	envelope := m.From
	if envelope == "" {
		envelope = "MAILER-DAEMON"
	}
	text := strings.ReplaceAll(message(m.From, to, subject, body, now), "\r\n", "\n")
	var b strings.Builder
	fmt.Fprintf(&b, "From %s %s\n", envelope, now.UTC().Format(time.ANSIC))
	for line := range strings.Lines(text) {
		if strings.HasPrefix(strings.TrimLeft(line, ">"), "From ") {
			b.WriteByte('>')
		}
		b.WriteString(line)
	}
	b.WriteString("\n\n")
	if _, err := f.WriteString(b.String()); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
