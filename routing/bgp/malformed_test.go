package bgp

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/osrg/gobgp/v3/pkg/packet/bgp"
	"github.com/re6st-bpf/re6st-bpf/internal/netns"
	"github.com/stretchr/testify/require"
)

// rawPeer is a hand-driven BGP session from the upstream's namespace
// (fd00:b::1, AS 65001) to the speaker, for what no real router sends.
type rawPeer struct {
	t    *testing.T
	conn net.Conn
}

func dialRaw(t *testing.T, ns *netns.NS) *rawPeer {
	t.Helper()
	var conn net.Conn
	// The socket is made in the namespace; it stays there whatever thread
	// uses it next.
	require.Eventually(t, func() bool {
		err := ns.Do(func() error {
			d := net.Dialer{LocalAddr: &net.TCPAddr{IP: birdAddr.AsSlice()}, Timeout: time.Second}
			var err error
			conn, err = d.Dial("tcp", netip.AddrPortFrom(localAddr, 179).String())
			return err
		})
		return err == nil
	}, 10*time.Second, 100*time.Millisecond, "cannot connect to the speaker")
	t.Cleanup(func() { conn.Close() })
	return &rawPeer{t: t, conn: conn}
}

func (p *rawPeer) send(m *bgp.BGPMessage) {
	b, err := m.Serialize()
	require.NoError(p.t, err)
	p.sendRaw(b)
}

func (p *rawPeer) sendRaw(b []byte) {
	_, err := p.conn.Write(b)
	require.NoError(p.t, err)
}

// receive reads one message; io.EOF (or a reset) once the speaker closed.
func (p *rawPeer) receive() (*bgp.BGPMessage, error) {
	require.NoError(p.t, p.conn.SetReadDeadline(time.Now().Add(10*time.Second)))
	header := make([]byte, bgp.BGP_HEADER_LENGTH)
	if _, err := io.ReadFull(p.conn, header); err != nil {
		return nil, err
	}
	body := make([]byte, int(binary.BigEndian.Uint16(header[16:18]))-bgp.BGP_HEADER_LENGTH)
	if _, err := io.ReadFull(p.conn, body); err != nil {
		return nil, err
	}
	return bgp.ParseBGPMessage(append(header, body...))
}

// TestSpeakerMalformedUpdate: a peer sends an UPDATE whose path attributes
// overrun the message. The speaker answers with a NOTIFICATION (UPDATE
// Message Error) and closes the session (RFC 4271 §6.3; RFC 7606 §4
// keeps session reset for an attribute length that does not fit), logs
// it, and learns nothing.
func TestSpeakerMalformedUpdate(t *testing.T) {
	netns.RequireRoot(t)
	ns := upstreamLink(t)
	logs := &logBuffer{}
	s := startSpeaker(t, "", logs, nil)
	p := dialRaw(t, ns)
	p.send(bgp.NewBGPOpenMessage(65001, 9, "10.255.0.1", []bgp.OptionParameterInterface{
		bgp.NewOptionParameterCapability([]bgp.ParameterCapabilityInterface{
			bgp.NewCapMultiProtocol(bgp.RF_IPv6_UC), bgp.NewCapFourOctetASNumber(65001),
		}),
	}))
	m, err := p.receive()
	require.NoError(t, err)
	require.Equal(t, uint8(bgp.BGP_MSG_OPEN), m.Header.Type)
	p.send(bgp.NewBGPKeepAliveMessage())
	require.Eventually(t, func() bool { return s.Sessions()[0].Established() }, 10*time.Second, 50*time.Millisecond)

	// Withdrawn routes length 0, path attribute length 16, but 4 bytes of
	// attributes (ORIGIN IGP) in the message.
	update := append(bytes.Repeat([]byte{0xff}, 16), 0, 0, bgp.BGP_MSG_UPDATE, 0, 0, 0, 16, 0x40, 1, 1, 0)
	binary.BigEndian.PutUint16(update[16:], uint16(len(update)))
	p.sendRaw(update)

	var notification *bgp.BGPNotification
	for notification == nil {
		m, err := p.receive()
		if err != nil {
			require.True(t, errors.Is(err, io.EOF) || strings.Contains(err.Error(), "reset"), "%v", err)
			break
		}
		if n, ok := m.Body.(*bgp.BGPNotification); ok {
			notification = n
		}
	}
	require.NotNil(t, notification, "no NOTIFICATION before the close")
	require.Equal(t, uint8(bgp.BGP_ERROR_UPDATE_MESSAGE_ERROR), notification.ErrorCode)
	require.Eventually(t, func() bool { return !s.Sessions()[0].Established() }, 5*time.Second, 50*time.Millisecond)
	require.Zero(t, s.LearnedCount())
	require.Contains(t, logs.String(), "Session will be reset due to malformed BGP")
}
