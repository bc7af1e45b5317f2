package pinpointreceiver

import (
	"context"
	"encoding/hex"
	"fmt"
	"strconv"
	"sync"

	"go.opentelemetry.io/collector/extension/xextension/storage"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"

	v1 "github.com/weftobs/weft/receiver/pinpointreceiver/internal/proto/v1"
	"github.com/weftobs/weft/receiver/pinpointreceiver/internal/translate"
)

// agentKey identifies one agent process: ids in its metadata are only
// meaningful within it.
type agentKey struct {
	agentID string
	start   int64
}

// Kinds of metadata, as stored and as counted.
const (
	kindAPI       = "api"
	kindSQL       = "sql"
	kindSQLUID    = "sql_uid"
	kindString    = "string"
	kindAgentInfo = "agent_info"
)

type metaKey struct {
	agent agentKey
	kind  string
	id    string // the id as decimal, or the SQL uid in hex
}

// storageKey is the key in the storage extension.
func (k metaKey) storageKey() string {
	return k.kind + "/" + k.agent.agentID + "/" + strconv.FormatInt(k.agent.start, 10) + "/" + k.id
}

// store keeps the metadata agents send once per process (API, SQL and string
// names, agent info). Everything is held in memory; with a storage extension
// it is also written through, so that a restart of Weft loses no name an
// agent will never send again, and read back on a miss.
type store struct {
	client storage.Client // nil: memory only
	logger *zap.Logger

	mu  sync.RWMutex
	api map[metaKey]translate.API
	str map[metaKey]string // sql, sql_uid and string names
	// info is the agent info of each agent process; infoFor answers with
	// a zero PAgentInfo for unknown agents.
	info map[agentKey]*v1.PAgentInfo
	// missed remembers keys the storage did not have, so a name that is
	// still on its way costs one storage read, not one per lookup.
	missed map[metaKey]struct{}
}

func newStore(client storage.Client, logger *zap.Logger) *store {
	return &store{
		client: client,
		logger: logger,
		api:    map[metaKey]translate.API{},
		str:    map[metaKey]string{},
		info:   map[agentKey]*v1.PAgentInfo{},
		missed: map[metaKey]struct{}{},
	}
}

// put records a value and writes it through to storage. A storage failure
// is returned; the value is still held in memory.
func (s *store) put(ctx context.Context, k metaKey, msg proto.Message) error {
	s.mu.Lock()
	s.remember(k, msg)
	delete(s.missed, k)
	s.mu.Unlock()
	if s.client == nil {
		return nil
	}
	b, err := proto.Marshal(msg)
	if err != nil {
		return err
	}
	if err := s.client.Set(ctx, k.storageKey(), b); err != nil {
		return fmt.Errorf("storing %s metadata: %w", k.kind, err)
	}
	return nil
}

// maxCached bounds the entries held in memory when a storage extension holds
// them all: past it the memory cache starts over and fills again from
// storage as lookups need it. (Java agents register thousands of API ids
// each; a restarted agent's old entries are never asked for again.)
const maxCached = 500_000

// remember puts a decoded value into the maps; s.mu is held.
func (s *store) remember(k metaKey, msg proto.Message) {
	if s.client != nil && len(s.api)+len(s.str) >= maxCached {
		clear(s.api)
		clear(s.str)
	}
	switch m := msg.(type) {
	case *v1.PApiMetaData:
		s.api[k] = translate.API{Info: m.GetApiInfo(), Line: m.GetLine(), Type: m.GetType(), Location: m.GetLocation()}
	case *v1.PSqlMetaData:
		s.str[k] = m.GetSql()
	case *v1.PSqlUidMetaData:
		s.str[k] = m.GetSql()
	case *v1.PStringMetaData:
		s.str[k] = m.GetStringValue()
	case *v1.PAgentInfo:
		s.info[k.agent] = m
	}
}

// load reads a key missing from memory from storage, once.
func (s *store) load(k metaKey) bool {
	if s.client == nil {
		return false
	}
	s.mu.RLock()
	_, missed := s.missed[k]
	s.mu.RUnlock()
	if missed {
		return false
	}
	b, err := s.client.Get(context.Background(), k.storageKey())
	var msg proto.Message
	switch k.kind {
	case kindAPI:
		msg = &v1.PApiMetaData{}
	case kindSQL:
		msg = &v1.PSqlMetaData{}
	case kindSQLUID:
		msg = &v1.PSqlUidMetaData{}
	case kindString:
		msg = &v1.PStringMetaData{}
	case kindAgentInfo:
		msg = &v1.PAgentInfo{}
	}
	if err == nil && b != nil {
		err = proto.Unmarshal(b, msg)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil || b == nil {
		if err != nil {
			s.logger.Warn("Reading Pinpoint metadata from storage failed", zap.String("key", k.storageKey()), zap.Error(err))
		}
		if len(s.missed) >= maxCached {
			clear(s.missed)
		}
		s.missed[k] = struct{}{}
		return false
	}
	s.remember(k, msg)
	return true
}

// forget drops what storage did not have, so that later lookups ask again:
// called when an agent sends new metadata.
func (s *store) forget(agent agentKey) {
	s.mu.Lock()
	for k := range s.missed {
		if k.agent == agent {
			delete(s.missed, k)
		}
	}
	s.mu.Unlock()
}

func (s *store) agentInfo(agent agentKey) *v1.PAgentInfo {
	info, _ := cached(s, s.info, agent, metaKey{agent: agent, kind: kindAgentInfo})
	return info
}

// cached looks mk up in m, one of s's maps, and on a miss reads k from
// storage once and looks again.
func cached[K comparable, V any](s *store, m map[K]V, mk K, k metaKey) (V, bool) {
	for range 2 {
		s.mu.RLock()
		v, ok := m[mk]
		s.mu.RUnlock()
		if ok {
			return v, true
		}
		if !s.load(k) {
			break
		}
	}
	var zero V
	return zero, false
}

// names answers lookups for one agent process.
func (s *store) names(agent agentKey, serviceType int32) agentNames {
	return agentNames{s: s, agent: agent, serviceType: serviceType}
}

type agentNames struct {
	s           *store
	agent       agentKey
	serviceType int32
}

// nodeAPIs are the two API ids every Node agent registers at start, before
// its first request. An agent that started before Weft never sends them
// again, and they are the same for every Node agent.
var nodeAPIs = map[int32]string{1: "Node Server Process", 2: "Asynchronous Invocation"}

const serviceTypeNode = 1400

func (n agentNames) API(id int32) (translate.API, bool) {
	k := metaKey{agent: n.agent, kind: kindAPI, id: strconv.Itoa(int(id))}
	if api, ok := cached(n.s, n.s.api, k, k); ok {
		return api, true
	}
	if name, ok := nodeAPIs[id]; ok && n.serviceType == serviceTypeNode {
		return translate.API{Info: name}, true
	}
	return translate.API{}, false
}

func (n agentNames) lookup(kind, id string) (string, bool) {
	k := metaKey{agent: n.agent, kind: kind, id: id}
	return cached(n.s, n.s.str, k, k)
}

func (n agentNames) SQL(id int32) (string, bool) { return n.lookup(kindSQL, strconv.Itoa(int(id))) }
func (n agentNames) SQLUID(uid []byte) (string, bool) {
	return n.lookup(kindSQLUID, hex.EncodeToString(uid))
}
func (n agentNames) String(id int32) (string, bool) {
	return n.lookup(kindString, strconv.Itoa(int(id)))
}
