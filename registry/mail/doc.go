// Package mail delivers registration tokens: through an SMTP server
// (net/smtp, optional STARTTLS and login) or, when the registry's mail
// host is a file path, by appending to an mbox file, as re6st does.
package mail
