package scimhandlers

import (
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"

	fp "github.com/scim2/filter-parser/v2"
)

// libraryFilter is parseFilter's slow path: the library on the rewritten
// filter, then the same unescaping.
func libraryFilter(raw string) (fp.Expression, error) {
	e, err := fp.ParseFilter([]byte(rewriteSubAttrValuePaths(raw)))
	if err == nil {
		unescapeStrings(e)
	}
	return e, err
}

// checkSame fails when fastFilter accepts raw but the library rejects it
// or builds another AST, and returns whether the fast path took it.
func checkSame(t *testing.T, raw string) bool {
	t.Helper()
	fast, ok := fastFilter(raw)
	if !ok {
		return false
	}
	unescapeStrings(fast)
	lib, err := libraryFilter(raw)
	if err != nil {
		t.Errorf("%q: fast path accepted a filter the library rejects: %v", raw, err)
		return true
	}
	if !reflect.DeepEqual(fast, lib) {
		t.Errorf("%q: fast path AST %#v, library %#v", raw, fast, lib)
	}
	return true
}

// TestFastFilterMatchesLibrary: for every filter of the table the fast
// path either declines or gives the library's AST, and from there the same
// index plan, validation result and unescaped value; the forms IdPs send
// take the fast path.
func TestFastFilterMatchesLibrary(t *testing.T) {
	cases := []struct {
		filter string
		fast   bool // the fast path must take it
	}{
		{`userName eq "jane.doe@example.com"`, true},
		{`userName Eq "Jane.Doe@Example.com"`, true},
		{`USERNAME EQ "jane@example.com"`, true},
		{`externalId eq "00u1abcd2EFGH3ijk4l5"`, true},
		{`emails.value eq "jane@example.com"`, true},
		{`Emails.Value eq "jane@example.com"`, true},
		{`displayName eq "Finance Team"`, true},
		{`id eq "2819c223-7f76-453a-919d-413861904646"`, true},
		{`userName eq "jane@example.com" and active eq true`, true},
		{`userName eq "jane@example.com" AND active eq TRUE`, true},
		{`userName eq "a" and externalId eq "b" and active eq false`, true},
		{`userName  eq   "two spaces"`, true},
		{`title pr`, true},
		{`title pr and userName sw "j"`, true},
		{`userName co "doe" and userName ew ".com"`, true},
		{`userName ne null`, true},
		{`members.value eq "abc"`, true},
		{`userName eq ""`, true},
		{`userName eq "quote \" inside"`, true},
		{`userName eq "ends with quote \""`, true},
		{`userName eq "\"starts with quote"`, true},
		{`userName eq "back\\slash"`, true},
		{`userName eq "slash \/ tab \t unicode \u00E9 \u20AC"`, true},
		{`userName eq "and active eq true"`, true},
		{`userName eq "ünïcödé@example.com"`, true},
		{`displayName eq "Ops (EU) & Co."`, true},
		// declined: the library decides
		{`userName eq "lower hex \u00e9"`, false},
		{`userName eq "bad escape \q"`, false},
		{`userName eq "unterminated`, false},
		{`userName eq 'single quotes'`, false},
		{`userName eq "x" or userName eq "y"`, false},
		{`not (userName eq "x")`, false},
		{`(userName eq "x")`, false},
		{`emails[type eq "work" and value eq "x@example.com"]`, false},
		{`emails[type eq "work"].value eq "x@example.com"`, false},
		{`urn:ietf:params:scim:schemas:core:2.0:User:userName eq "x"`, false},
		{`urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber eq "42"`, false},
		{`urn:ietf:params:scim:schemas:extension:workato:2.0:User:workato_role eq "Admin"`, false},
		{`urn:ietf:params:scim:schemas:workato:1.0:WorkatoRole:workato_role_prod eq "Admin" and userName eq "x"`, false},
		{`meta.lastModified gt "2011-05-13T04:42:34Z"`, true},
		{`x eq 42`, false},
		{` userName eq "x"`, false},
		{`userName eq "x" `, false},
		{`userName eq "x" and`, false},
		{`userName eq "x"and active eq true`, false},
		{`userName eq "x" andactive eq true`, false},
		{`userName xx "x"`, false},
		{`userName eq`, false},
		{`userName`, false},
		{`userName eq truex`, false},
		{`userName eq "x"y`, false},
		{`1userName eq "x"`, false},
		{`$ref eq "x"`, false},
		{`userName eq "tab	raw"`, false},
		{"", false},
	}
	for _, c := range cases {
		took := checkSame(t, c.filter)
		if took != c.fast {
			t.Errorf("%q: fast path taken = %v, want %v", c.filter, took, c.fast)
		}
		// The whole of parseFilter (validation, 400s) and the index plan
		// are the same on both paths.
		for _, k := range []*resourceKind{userKind, groupKind} {
			got, gerr := parseFilter(c.filter, k)
			lib, lerr := libraryFilter(c.filter)
			if lerr == nil {
				if verr := validateExpr(scope{kind: k}, lib); verr != nil {
					lib, lerr = nil, verr
				}
			}
			if (gerr == nil) != (lerr == nil) {
				t.Errorf("%q (%s): parseFilter error %v, library path error %v", c.filter, k.name, gerr, lerr)
				continue
			}
			if gerr != nil {
				continue
			}
			if !reflect.DeepEqual(got, lib) {
				t.Errorf("%q (%s): parseFilter %#v, library %#v", c.filter, k.name, got, lib)
			}
			gk, gok := planLookups(k, got)
			lk, lok := planLookups(k, lib)
			if gok != lok || !reflect.DeepEqual(gk, lk) {
				t.Errorf("%q (%s): plan %v/%v, library plan %v/%v", c.filter, k.name, gk, gok, lk, lok)
			}
		}
	}
	// The unescaped value of a tricky escape is the JSON one.
	e, aerr := parseFilter(`userName eq "a\"b\\c"`, userKind)
	if aerr != nil {
		t.Fatal(aerr.Detail)
	}
	if v := e.(*fp.AttributeExpression).CompareValue; v != `a"b\c` {
		t.Fatalf("unescaped value %q, want %q", v, `a"b\c`)
	}
}

// TestFastFilterGenerated compares the fast path with the library on
// filters assembled from fragments, valid and not.
func TestFastFilterGenerated(t *testing.T) {
	attrs := []string{"userName", "USERNAME", "emails.value", "name.givenName", "active", "x-y_z9", "a.", ".a", "9a", "urn:x:y"}
	ops := []string{"eq", "EQ", "Ne", "co", "sw", "ew", "gt", "ge", "lt", "le", "pr", "PR", "xx", "e"}
	vals := []string{`"v"`, `""`, `"a\"b"`, `"\\"`, `"\u00E9"`, `"\u00e9"`, `"\x"`, `"open`, `true`, `False`, `NULL`, `1`, `-2.5e3`, `tru`, `"é"`, `"a b"`, `"\/"`}
	seps := []string{" ", "  ", ""}
	joins := []string{" and ", " AND ", "  and  ", " or ", "and", " and"}
	r := rand.New(rand.NewPCG(1, 2))
	pick := func(xs []string) string { return xs[r.IntN(len(xs))] }
	one := func() string {
		op := pick(ops)
		if strings.EqualFold(op, "pr") && r.IntN(2) == 0 {
			return pick(attrs) + pick(seps) + op
		}
		return pick(attrs) + pick(seps) + op + pick(seps) + pick(vals)
	}
	taken := 0
	for n := 0; n < 5000; n++ {
		f := one()
		for c := r.IntN(3); c > 0; c-- {
			f += pick(joins) + one()
		}
		if checkSame(t, f) {
			taken++
		}
	}
	if taken < 200 {
		t.Fatalf("only %d of 5000 generated filters took the fast path (277 with this seed); the generator is off", taken)
	}
}
