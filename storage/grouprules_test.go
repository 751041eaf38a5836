package storage

import "testing"

func TestMatchGroupRuleFirstRuleNamingTheEnvironmentWins(t *testing.T) {
	rules := []GroupRule{
		{Group: "eng", Roles: Roles{Dev: "Admin"}},
		{Group: "ops", Roles: Roles{Dev: "Analyst", Prod: "Operator"}},
		{Group: "eng", Roles: Roles{Prod: "Admin"}},
	}
	for _, tc := range []struct {
		name   string
		env    int
		groups []string
		want   GroupRuleMatch
		ok     bool
	}{
		{"first rule", 0, []string{"ops", "eng"}, GroupRuleMatch{Rule: 1, Group: "eng", Role: "Admin"}, true},
		{"second when first not a member", 0, []string{"ops"}, GroupRuleMatch{Rule: 2, Group: "ops", Role: "Analyst"}, true},
		{"rule without the env is skipped", 2, []string{"eng", "ops"}, GroupRuleMatch{Rule: 2, Group: "ops", Role: "Operator"}, true},
		{"later rule for the env", 2, []string{"eng"}, GroupRuleMatch{Rule: 3, Group: "eng", Role: "Admin"}, true},
		{"no rule names test", 1, []string{"eng", "ops"}, GroupRuleMatch{}, false},
		{"case-sensitive group", 0, []string{"ENG"}, GroupRuleMatch{}, false},
		{"no groups", 0, nil, GroupRuleMatch{}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := MatchGroupRule(rules, tc.env, tc.groups)
			if got != tc.want || ok != tc.ok {
				t.Fatalf("MatchGroupRule = %+v, %v; want %+v, %v", got, ok, tc.want, tc.ok)
			}
		})
	}
}
