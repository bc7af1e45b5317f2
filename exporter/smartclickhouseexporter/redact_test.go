package smartclickhouseexporter

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/weftobs/weft/exporter/smartclickhouseexporter/internal/schema"
)

// Short passwords used to pass through unredacted.
func TestShortSecretsAreRedacted(t *testing.T) {
	f := schema.FeaturesOf(schema.Version{Major: 23, Minor: 8})
	for _, pw := range []string{"a", "ab", "x'y", `\`} {
		o := schema.Options{Database: "weft", Lifetime: 60e9,
			Source: schema.Source{Driver: "mysql", Host: "db", Port: 3306, User: "u", Password: pw, Database: "meta"}}
		objs, err := schema.DictionaryObjects(f, o)
		assert.NoError(t, err)
		ddl := objs[0].Create[0]
		red := newRedactor("", pw)
		got := red.String("Syntax error: failed at position 1: " + ddl + " ... parse a value")
		assert.NotContains(t, got, "PASSWORD "+schema.QuoteString(pw), pw)
		assert.Contains(t, got, "USER 'u' PASSWORD [REDACTED] DB 'meta'", pw)
		assert.Contains(t, got, "parse a value", "a short secret is not replaced bare")
		// What a syntax error quotes from the failing token on.
		assert.Equal(t, "failed at ([REDACTED]) DB 'meta'", red.String("failed at ("+schema.QuoteString(pw)+") DB 'meta'"), pw)
		// Cut short by the server.
		assert.Equal(t, "USER 'u' PASSWORD '[REDACTED]", red.String("USER 'u' PASSWORD "+schema.QuoteString(pw)[:1+len(pw)/2]), pw)
		// XML dictionaries and URLs.
		assert.Equal(t, "<user>u</user><password>[REDACTED]</password>", red.String("<user>u</user><password>"+pw+"</password>"), pw)
	}
	assert.Equal(t, "dial mysql://u:[REDACTED]@db:3306", newRedactor("a").String("dial mysql://u:a@db:3306"))
	assert.Equal(t, "a long secret [REDACTED] is redacted anywhere", newRedactor("hunter2").String("a long secret hunter2 is redacted anywhere"))
	assert.Equal(t, "nothing to hide", redactor{}.String("nothing to hide"))
}
