package pinpointreceiver

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/extension/xextension/storage"
	"go.uber.org/zap"

	v1 "github.com/weftobs/weft/receiver/pinpointreceiver/internal/proto/v1"
)

// memClient is an in-memory storage.Client for the store's own logic; the
// real file_storage is exercised by the end-to-end restart test.
type memClient struct {
	mu      sync.Mutex
	m       map[string][]byte
	gets    int
	failSet bool
}

func (c *memClient) Get(_ context.Context, k string) ([]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gets++
	return c.m[k], nil
}

func (c *memClient) Set(_ context.Context, k string, v []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.failSet {
		return errors.New("disk full")
	}
	c.m[k] = v
	return nil
}

func (c *memClient) Delete(_ context.Context, k string) error           { delete(c.m, k); return nil }
func (c *memClient) Batch(context.Context, ...*storage.Operation) error { return errors.New("unused") }
func (c *memClient) Close(context.Context) error                        { return nil }

func TestStoreSurvivesRestart(t *testing.T) {
	client := &memClient{m: map[string][]byte{}}
	agent := agentKey{agentID: "shop-1", start: 42}
	s := newStore(client, zap.NewNop())
	ctx := context.Background()
	require.NoError(t, s.put(ctx, metaKey{agent: agent, kind: kindAPI, id: "7"}, &v1.PApiMetaData{ApiId: 7, ApiInfo: "Cart.get()"}))
	require.NoError(t, s.put(ctx, metaKey{agent: agent, kind: kindSQLUID, id: "0a0b"}, &v1.PSqlUidMetaData{SqlUid: []byte{10, 11}, Sql: "SELECT 1"}))
	require.NoError(t, s.put(ctx, metaKey{agent: agent, kind: kindAgentInfo}, &v1.PAgentInfo{Hostname: "h", ServiceType: 1010}))

	// A new store over the same storage: what Weft sees after a restart.
	s2 := newStore(client, zap.NewNop())
	n := s2.names(agent, 1010)
	api, ok := n.API(7)
	assert.True(t, ok)
	assert.Equal(t, "Cart.get()", api.Info)
	sql, ok := n.SQLUID([]byte{10, 11})
	assert.True(t, ok)
	assert.Equal(t, "SELECT 1", sql)
	assert.Equal(t, "h", s2.agentInfo(agent).GetHostname())

	// Another process of the same agent (another start time) is another
	// id space.
	_, ok = s2.names(agentKey{agentID: "shop-1", start: 43}, 1010).API(7)
	assert.False(t, ok)

	// A miss reads storage once, not on every lookup, until the agent sends
	// something new.
	gets := client.gets
	for range 5 {
		_, ok = n.SQL(99)
		assert.False(t, ok)
	}
	assert.Equal(t, gets+1, client.gets)
	s2.forget(agent)
	_, _ = n.SQL(99)
	assert.Equal(t, gets+2, client.gets)
}

func TestStoreKeepsInMemoryWhenStorageFails(t *testing.T) {
	client := &memClient{m: map[string][]byte{}, failSet: true}
	s := newStore(client, zap.NewNop())
	agent := agentKey{agentID: "a", start: 1}
	err := s.put(context.Background(), metaKey{agent: agent, kind: kindString, id: "3"}, &v1.PStringMetaData{StringId: 3, StringValue: "java.io.IOException"})
	require.ErrorContains(t, err, "disk full")
	v, ok := s.names(agent, 0).String(3)
	assert.True(t, ok)
	assert.Equal(t, "java.io.IOException", v)
}

// Node agents' API ids 1 and 2 are known without metadata, for Node agents
// only.
func TestNodeBuiltinAPIs(t *testing.T) {
	s := newStore(nil, zap.NewNop())
	agent := agentKey{agentID: "front", start: 1}
	api, ok := s.names(agent, serviceTypeNode).API(2)
	assert.True(t, ok)
	assert.Equal(t, "Asynchronous Invocation", api.Info)
	_, ok = s.names(agent, 1010).API(2)
	assert.False(t, ok, "a Java agent's API 2 is its own")
}
