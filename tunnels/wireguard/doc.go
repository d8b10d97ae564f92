// Package wireguard is the WireGuard tunnel backend's device and key
// binding.
//
// A Device is one point-to-point WireGuard tunnel: a layer-3 device that
// the data plane uses as a device tunnel (loader.DEVICE), with exactly one
// peer whose allowed IPs are everything (what the data plane routes into
// the device goes to that peer). It runs on the kernel's WireGuard where the
// kernel makes a link of kind wireguard (configured with wgctrl), otherwise
// on wireguard-go, the userspace implementation over a TUN device, in the
// node's process (KernelSupported, Device.Kind).
//
// A node's WireGuard public key is bound to its re6st certificate: a
// Binding is the key, the node's prefix and a generation number, signed
// with the node's RSA key (the one its certificate certifies). A peer
// accepts a WireGuard key only through a binding that verifies against the
// peer's certificate, which the node protocol has checked against the
// network's CA; so only CA-certified nodes get a WireGuard tunnel. A newer
// generation replaces a key (rotation) while the device, its data-plane
// tunnel and its Babel interface stay.
package wireguard
