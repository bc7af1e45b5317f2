package smartclickhouseexporter

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/configopaque"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/config/configretry"
	"go.opentelemetry.io/collector/config/configtls"
	"go.opentelemetry.io/collector/exporter/exporterhelper"
)

// Config defines the smart_clickhouse exporter's configuration.
type Config struct {
	exporterhelper.TimeoutConfig `mapstructure:",squash"`
	RetryConfig                  configretry.BackOffConfig                                `mapstructure:"retry_on_failure"`
	QueueConfig                  configoptional.Optional[exporterhelper.QueueBatchConfig] `mapstructure:"sending_queue"`

	// Endpoint lists the ClickHouse servers' native-protocol addresses,
	// separated by commas: tcp://host:9000[,host2:9000]. Inserts go to the
	// first that answers.
	Endpoint string `mapstructure:"endpoint"`
	// Database holds Weft's tables, dictionaries and views.
	Database string              `mapstructure:"database"`
	Username string              `mapstructure:"username"`
	Password configopaque.String `mapstructure:"password"`
	// Compression of the native protocol: lz4, zstd or none.
	Compression string                 `mapstructure:"compression"`
	TLS         configtls.ClientConfig `mapstructure:"tls"`

	// TTL is how long rows are kept; 0 keeps them forever. Applied on
	// servers that support TTL (19.6 and later).
	TTL time.Duration `mapstructure:"ttl"`
	// Cluster, when set, creates Replicated*MergeTree local tables and
	// Distributed tables ON CLUSTER this cluster.
	Cluster string `mapstructure:"cluster"`
	// CreateSchema creates and migrates tables, dictionaries and views at
	// start. Turn it off where a DBA applies the DDL.
	CreateSchema bool `mapstructure:"create_schema"`

	Dictionaries DictionariesConfig `mapstructure:"dictionaries"`

	// Metadata, when set, is the id of a k8s_metadata extension the
	// exporter asks for the peer of client and server spans that carry no
	// weft.peer.* ids: set it with smart_encoding's peer_attributes: false,
	// so the peer side costs no per-span attributes.
	Metadata *component.ID `mapstructure:"metadata"`

	// prevent unkeyed literal initialization
	_ struct{}
}

// DictionariesConfig describes the dictionaries that decode resource ids into
// names. They read the k8s_metadata extension's ch_ tables.
type DictionariesConfig struct {
	// Source is how the ClickHouse SERVER reaches the metadata database,
	// which may differ from how the collector reaches it.
	Source DictionarySourceConfig `mapstructure:"source"`
	// Lifetime is the longest a dictionary goes without checking the
	// metadata database for changes.
	Lifetime time.Duration `mapstructure:"lifetime"`
	// XMLDir is where dictionary definitions are written as XML for servers
	// without CREATE DICTIONARY (before 19.17); it must match the server's
	// dictionaries_config.
	XMLDir string `mapstructure:"xml_dir"`
}

// DictionarySourceConfig is the metadata database as the ClickHouse server
// sees it.
type DictionarySourceConfig struct {
	// Driver is "postgres" or "mysql". Empty means no dictionaries.
	Driver   string              `mapstructure:"driver"`
	Host     string              `mapstructure:"host"`
	Port     int                 `mapstructure:"port"`
	User     string              `mapstructure:"user"`
	Password configopaque.String `mapstructure:"password"`
	Database string              `mapstructure:"database"`
}

func createDefaultConfig() component.Config {
	queue := exporterhelper.NewDefaultQueueConfig()
	// ClickHouse wants few large inserts: batch by items in the queue.
	queue.Sizer = exporterhelper.RequestSizerTypeItems
	queue.QueueSize = 1_000_000
	queue.NumConsumers = 2
	queue.Batch = configoptional.Some(exporterhelper.BatchConfig{
		FlushTimeout: time.Second,
		Sizer:        exporterhelper.RequestSizerTypeItems,
		MinSize:      50_000,
	})
	return &Config{
		TimeoutConfig: exporterhelper.NewDefaultTimeoutConfig(),
		RetryConfig:   configretry.NewDefaultBackOffConfig(),
		QueueConfig:   configoptional.Some(queue),
		Endpoint:      "tcp://127.0.0.1:9000",
		Database:      "weft",
		Username:      "default",
		Compression:   "lz4",
		// Plain TCP unless TLS is asked for (tls.insecure: false, or a CA).
		TLS:          configtls.ClientConfig{Insecure: true},
		CreateSchema: true,
		Dictionaries: DictionariesConfig{
			Lifetime: 60 * time.Second,
		},
	}
}

// identifier is what Weft accepts as a database or cluster name: it is
// written into DDL, so it must need no quoting.
var identifier = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// Validate checks the configuration.
func (cfg *Config) Validate() error {
	var errs []error
	if cfg.Endpoint == "" {
		errs = append(errs, errors.New("endpoint must be set, for example tcp://127.0.0.1:9000"))
	} else if err := validateEndpoint(cfg.Endpoint); err != nil {
		errs = append(errs, err)
	}
	if !identifier.MatchString(cfg.Database) {
		errs = append(errs, fmt.Errorf("database %q must be a plain identifier ([A-Za-z_][A-Za-z0-9_]*)", cfg.Database))
	}
	if cfg.Cluster != "" && !identifier.MatchString(cfg.Cluster) {
		errs = append(errs, fmt.Errorf("cluster %q must be a plain identifier ([A-Za-z_][A-Za-z0-9_]*)", cfg.Cluster))
	}
	switch cfg.Compression {
	case "lz4", "zstd", "none", "":
	default:
		errs = append(errs, fmt.Errorf("compression must be lz4, zstd or none, got %q", cfg.Compression))
	}
	if cfg.TTL < 0 {
		errs = append(errs, fmt.Errorf("ttl must not be negative, got %s", cfg.TTL))
	}
	d := cfg.Dictionaries
	switch d.Source.Driver {
	case "":
	case "postgres", "mysql":
		if d.Source.Host == "" || d.Source.Database == "" {
			errs = append(errs, errors.New("dictionaries.source needs host and database"))
		}
		if d.Source.Port <= 0 || d.Source.Port > 65535 {
			errs = append(errs, fmt.Errorf("dictionaries.source.port must be 1-65535, got %d", d.Source.Port))
		}
	default:
		errs = append(errs, fmt.Errorf("dictionaries.source.driver must be postgres or mysql, got %q", d.Source.Driver))
	}
	if d.Lifetime < 2*time.Second {
		errs = append(errs, fmt.Errorf("dictionaries.lifetime must be at least 2s, got %s", d.Lifetime))
	}
	return errors.Join(errs...)
}

// validateEndpoint checks every host of a comma-separated endpoint list.
func validateEndpoint(endpoint string) error {
	scheme, rest, found := strings.Cut(endpoint, "://")
	if !found {
		return errors.New("endpoint needs the scheme tcp://, for example tcp://127.0.0.1:9000")
	}
	hosts, _, params := strings.Cut(rest, "?")
	hosts, _, path := strings.Cut(hosts, "/")
	// Credentials in the endpoint would end up in logs and error messages;
	// they belong in username and password, which are never printed.
	if strings.Contains(hosts, "@") {
		return errors.New("endpoint must not contain credentials: set username and password instead")
	}
	if scheme != "tcp" && scheme != "clickhouse" {
		return fmt.Errorf("endpoint scheme must be tcp or clickhouse (the native protocol), got %q", scheme)
	}
	// DSN options would silently compete with the settings below.
	if params || path {
		return errors.New("endpoint takes only tcp://host:port[,host:port...]: set the database, tls and compression settings instead of a path or ?options")
	}
	for _, h := range strings.Split(hosts, ",") {
		u, err := url.Parse("tcp://" + h)
		if err != nil || u.Hostname() == "" || u.Port() == "" {
			return fmt.Errorf("endpoint: %q is not host:port", h)
		}
	}
	return nil
}
