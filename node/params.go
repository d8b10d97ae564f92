package node

import (
	"context"
	"crypto/rsa"
	"fmt"
	"time"

	"github.com/re6st-bpf/re6st-bpf/registry/netparams"
	"github.com/re6st-bpf/re6st-bpf/registry/wire"
)

const paramsConfigName = "network-parameters"

// loadParams returns the network parameters: the cached document if it
// still verifies, else the registry's, retried with a back-off from 1 to
// 60 s until ctx ends (re6st's start-up loop).
func (n *Node) loadParams(ctx context.Context) (*netparams.Params, error) {
	if doc, ok, err := n.cache.Config(paramsConfigName); err == nil && ok {
		p, err := netparams.Decode(doc, n.id.CA.PublicKey.(*rsa.PublicKey), n.id.Key)
		if err == nil && p.Protocol >= netparams.Protocol {
			n.log.Info().Uint64("version", p.Version).Msg("network parameters from the cache")
			return p, nil
		}
		n.log.Warn().Err(err).Msg("cached network parameters unusable, asking the registry")
	}
	for delay := time.Second; ; delay = min(2*delay, time.Minute) {
		p, err := n.fetchParams(ctx)
		if err == nil {
			return p, nil
		}
		n.log.Warn().Err(err).Dur("retry_in", delay).Msg("cannot get the network parameters")
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(delay):
		}
	}
}

// fetchParams asks the registry and caches the document.
func (n *Node) fetchParams(ctx context.Context) (*netparams.Params, error) {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	doc, p, err := n.session.NetworkConfigDocument(ctx)
	n.noteRegistry(err)
	if err != nil {
		return nil, err
	}
	if p.MinProtocol > netparams.Protocol {
		return nil, fmt.Errorf("the network requires protocol %d, this node speaks %d", p.MinProtocol, netparams.Protocol)
	}
	if err := n.cache.SetConfig(paramsConfigName, doc); err != nil {
		n.log.Warn().Err(err).Msg("cannot cache the network parameters")
	}
	return p, nil
}

// newerVersion handles a version a peer gossiped: if it is newer than
// ours (its CA signature is already checked), refetch the parameters a
// second later, as re6st does, and pass the version on.
func (n *Node) newerVersion(signed []byte) {
	v, err := wire.VersionNumber(signed)
	if err != nil || v <= n.params().Version {
		return
	}
	if !n.refetching.CompareAndSwap(false, true) {
		return
	}
	go func() {
		defer n.refetching.Store(false)
		time.Sleep(time.Second)
		p, err := n.fetchParams(n.ctx)
		if err != nil {
			n.log.Warn().Err(err).Uint64("version", v).Msg("newer network parameters announced, registry unreachable")
			return
		}
		n.adoptParams(p)
	}()
}

// adoptParams switches to newer parameters: the CRL applies at once (the
// tunnel manager tears down revoked peers' tunnels), the counts from the
// next tick; Babel keys change with a restart, as re6st's.
func (n *Node) adoptParams(p *netparams.Params) {
	old := n.params()
	n.paramsV.Store(p)
	n.log.Info().Uint64("from", old.Version).Uint64("to", p.Version).Msg("new network parameters")
	n.checkRevoked()
	for _, t := range n.tunnelList() {
		n.proto.Gossip(t.Peer)
	}
}
