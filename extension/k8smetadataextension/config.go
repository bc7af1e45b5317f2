package k8smetadataextension

import (
	"errors"
	"fmt"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/configopaque"

	"github.com/weftobs/weft/extension/k8smetadataextension/internal/store"
)

// Database drivers the extension can keep resources in.
const (
	DriverPostgres = store.DriverPostgres
	DriverMySQL    = store.DriverMySQL
)

// Config defines the k8s_metadata extension's configuration.
type Config struct {
	// ClusterName names the cluster this collector watches; it becomes the
	// name of the cluster's row and is part of every resource's identity.
	ClusterName string `mapstructure:"cluster_name"`
	// VPCID is the VPC the cluster's pod and node IPs belong to. Lookups are
	// keyed by (vpc id, IP) so that clusters with overlapping ranges differ.
	VPCID uint32 `mapstructure:"vpc_id"`
	// Kubeconfig is the path of a kubeconfig file; empty means in-cluster
	// authentication through the pod's service account.
	Kubeconfig string `mapstructure:"kubeconfig"`
	// Watch makes this collector watch the Kubernetes API and write the
	// database (the leader among those that watch). Without it the extension
	// only serves lookups from the database, which collectors in the cluster
	// fill: the setup of a gateway tier outside the cluster.
	Watch bool `mapstructure:"watch"`

	Database       DatabaseConfig       `mapstructure:"database"`
	LeaderElection LeaderElectionConfig `mapstructure:"leader_election"`

	// StaticResources is the path of a file listing resources Kubernetes does
	// not know about (regions, zones, VPCs, subnets, hosts with IPs). It is
	// reloaded when it changes.
	StaticResources string `mapstructure:"static_resources"`

	// DeletedRetention is how long a deleted resource's row is kept (marked
	// deleted) so that older telemetry still decodes. Its id is reused only
	// after the row is purged.
	DeletedRetention time.Duration `mapstructure:"deleted_retention"`

	// RefreshInterval is how often every instance checks the database's
	// change counter and loads what changed into its lookup snapshot.
	RefreshInterval time.Duration `mapstructure:"refresh_interval"`
	// WriteInterval is how long the leader gathers changes from the API
	// server into one database transaction.
	WriteInterval time.Duration `mapstructure:"write_interval"`

	// prevent unkeyed literal initialization
	_ struct{}
}

// DatabaseConfig says where resources and their ids are kept.
type DatabaseConfig struct {
	// Driver is "postgres" or "mysql" (MySQL and MariaDB).
	Driver string `mapstructure:"driver"`
	// DSN is the connection string: a PostgreSQL URL or key=value string
	// for postgres, a go-sql-driver DSN (user:pass@tcp(host:port)/db) for
	// mysql.
	DSN configopaque.String `mapstructure:"dsn"`
}

// LeaderElectionConfig controls the coordination.k8s.io Lease that makes one
// collector per cluster the writer. Every instance serves lookups.
type LeaderElectionConfig struct {
	Enabled        bool          `mapstructure:"enabled"`
	LeaseName      string        `mapstructure:"lease_name"`
	LeaseNamespace string        `mapstructure:"lease_namespace"`
	LeaseDuration  time.Duration `mapstructure:"lease_duration"`
	RenewDeadline  time.Duration `mapstructure:"renew_deadline"`
	RetryPeriod    time.Duration `mapstructure:"retry_period"`
}

func createDefaultConfig() component.Config {
	return &Config{
		Watch:    true,
		Database: DatabaseConfig{Driver: DriverPostgres},
		LeaderElection: LeaderElectionConfig{
			Enabled:        true,
			LeaseName:      "weft-k8s-metadata",
			LeaseNamespace: "default",
			LeaseDuration:  15 * time.Second,
			RenewDeadline:  10 * time.Second,
			RetryPeriod:    2 * time.Second,
		},
		DeletedRetention: 7 * 24 * time.Hour,
		RefreshInterval:  time.Second,
		WriteInterval:    200 * time.Millisecond,
	}
}

// Validate checks the configuration.
func (cfg *Config) Validate() error {
	var errs []error
	if cfg.ClusterName == "" {
		errs = append(errs, errors.New("cluster_name must be set: it names this cluster's resources in the database"))
	}
	switch cfg.Database.Driver {
	case DriverPostgres, DriverMySQL:
	default:
		errs = append(errs, fmt.Errorf("database.driver must be %q or %q, got %q", DriverPostgres, DriverMySQL, cfg.Database.Driver))
	}
	if cfg.Database.DSN == "" {
		errs = append(errs, errors.New("database.dsn must be set"))
	}
	if le := cfg.LeaderElection; le.Enabled {
		if le.LeaseName == "" || le.LeaseNamespace == "" {
			errs = append(errs, errors.New("leader_election.lease_name and leader_election.lease_namespace must be set when leader election is enabled"))
		}
		if le.RetryPeriod <= 0 || le.RenewDeadline <= le.RetryPeriod || le.LeaseDuration <= le.RenewDeadline {
			errs = append(errs, fmt.Errorf("leader_election needs lease_duration > renew_deadline > retry_period > 0, got %s, %s, %s",
				le.LeaseDuration, le.RenewDeadline, le.RetryPeriod))
		}
	}
	if cfg.RefreshInterval <= 0 || cfg.WriteInterval <= 0 {
		errs = append(errs, fmt.Errorf("refresh_interval and write_interval must be positive, got %s and %s", cfg.RefreshInterval, cfg.WriteInterval))
	}
	if cfg.DeletedRetention < 0 {
		errs = append(errs, fmt.Errorf("deleted_retention must not be negative, got %s", cfg.DeletedRetention))
	}
	return errors.Join(errs...)
}
