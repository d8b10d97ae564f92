// Command re6st-conf enrols a node in a re6st network: it fetches the CA
// (checking --fingerprint), gets a token by e-mail, uses a given one or
// registers anonymously, makes the node key and CSR, obtains the
// certificate and writes ca.crt, cert.crt, cert.key and re6stnet.conf.
package main
