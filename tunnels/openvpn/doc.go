// Package openvpn runs re6st's OpenVPN tunnels with Debian's openvpn
// binary: TAP devices, TLS with the node's certificate, the arguments re6st
// itself gives (re6st/plib.py), so that a re6st node's OpenVPN server or
// client and ours connect to each other. A Process owns one openvpn child:
// it logs its output and is stopped and waited for by Stop.
package openvpn
