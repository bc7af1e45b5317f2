package harness

import (
	"context"
	"database/sql"
	"testing"

	"github.com/jackc/pgx/v5"
)

func TestPostgres(t *testing.T) {
	db := Postgres(t)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, db.DSN)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var name string
	if err := conn.QueryRow(ctx, "SELECT current_database()").Scan(&name); err != nil {
		t.Fatal(err)
	}
	if name != db.Name {
		t.Fatalf("connected to %q, want %q", name, db.Name)
	}
	if _, err := conn.Exec(ctx, "CREATE TABLE t (id int primary key)"); err != nil {
		t.Fatal(err)
	}
	if other := Postgres(t); other.Name == db.Name {
		t.Fatal("two tests got the same database")
	}
}

func TestMariaDB(t *testing.T) {
	db := MariaDB(t)
	conn, err := sql.Open("mysql", db.DSN)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var name, version string
	if err := conn.QueryRow("SELECT DATABASE(), VERSION()").Scan(&name, &version); err != nil {
		t.Fatal(err)
	}
	if name != db.Name {
		t.Fatalf("connected to %q, want %q", name, db.Name)
	}
	if _, err := conn.Exec("CREATE TABLE t (id int primary key)"); err != nil {
		t.Fatal(err)
	}
	t.Logf("MariaDB %s, database %s", version, db.Name)
}
