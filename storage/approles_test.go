package storage_test

import (
	"errors"
	"testing"

	"github.com/scimjit/scimjit/storage"
)

func TestAppRolesMapsValuesToEnvironments(t *testing.T) {
	for _, tc := range []struct {
		name   string
		values []string
		want   storage.Roles
	}{
		{"none", nil, storage.Roles{}},
		{"bare value is DEV", []string{"Admin"}, storage.Roles{Dev: "Admin"}},
		{"prefixes in any case", []string{"TEST:Analyst", "Prod:Admin", "dev:Operator"},
			storage.Roles{Dev: "Operator", Test: "Analyst", Prod: "Admin"}},
		{"role stays case-sensitive", []string{"prod:admin"}, storage.Roles{Prod: "admin"}},
		{"unknown prefix is a DEV role name", []string{"staging:Admin"}, storage.Roles{Dev: "staging:Admin"}},
		{"same role twice is no conflict", []string{"Admin", "dev:Admin", " "}, storage.Roles{Dev: "Admin"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := storage.AppRoles(tc.values)
			if err != nil || got != tc.want {
				t.Fatalf("AppRoles(%q) = %+v, %v; want %+v", tc.values, got, err, tc.want)
			}
		})
	}
}

func TestAppRolesRefusesTwoRolesForOneEnvironment(t *testing.T) {
	_, err := storage.AppRoles([]string{"prod:Admin", "Analyst", "PROD:Operator"})
	var ce *storage.AppRoleConflictError
	if !errors.As(err, &ce) || ce.Environment != "prod" || ce.First != "Admin" || ce.Second != "Operator" {
		t.Fatalf("err = %v, want a prod conflict between Admin and Operator", err)
	}
	if got := err.Error(); got != `two different app roles for PROD: "Admin" and "Operator"` {
		t.Errorf("message = %q", got)
	}
}
