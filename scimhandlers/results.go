package scimhandlers

import (
	"container/heap"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"

	fp "github.com/scim2/filter-parser/v2"
)

// resultPage receives the matches of a filtered or sorted query one by
// one, in creation order (users before groups in a root query), and keeps
// only what the response shows: how many matched, and the resources of
// one page. Its memory does not grow with the number of matches: without
// sortBy it holds at most count resources; with sortBy the best
// startIndex+count-1 seen so far (at most maxSortWindow).
type resultPage struct {
	from, count int // 0-based position of the page's first resource; page size
	total       int
	items       []item  // without sortBy: the page
	sorted      *sorted // with sortBy
}

// newResultPage returns the collector for p's page, or 400 tooMany when
// p sorts and its page ends beyond maxSortWindow (RFC 7644 §3.4.2.4).
func newResultPage(p listParams) (*resultPage, *Error) {
	rp := &resultPage{from: p.startIndex - 1, count: p.count}
	if p.sortBy == "" {
		return rp, nil
	}
	if end := rp.from + rp.count; end > maxSortWindow {
		return nil, &Error{Status: 400, ScimType: typeTooMany, Detail: fmt.Sprintf(
			"with sortBy, startIndex+count-1 may be at most %d (it is %d): narrow the filter", maxSortWindow, end)}
	}
	rp.sorted = &sorted{path: p.sortPath, descending: p.descending, keep: rp.from + rp.count}
	return rp, nil
}

// add counts one match and keeps it if it may be on the page.
func (rp *resultPage) add(it item) {
	pos := rp.total
	rp.total++
	if rp.sorted != nil {
		rp.sorted.add(it, pos)
		return
	}
	if pos >= rp.from && pos < rp.from+rp.count {
		rp.items = append(rp.items, it)
	}
}

// page returns the resources of the page, in order.
func (rp *resultPage) page() []item {
	if rp.sorted == nil {
		return rp.items
	}
	return rp.sorted.page(rp.from)
}

// sorted keeps the keep first resources in sortBy order (RFC 7644
// §3.4.2.3): resources without a value last in either order, ties in
// creation order. It is a heap with the last of them on top, so each
// match costs O(log keep).
type sorted struct {
	path       fp.AttributePath
	descending bool
	keep       int
	entries    []sortEntry
}

type sortEntry struct {
	key sortKey
	seq int // position in creation order
	it  item
}

// sortKey is a resource's sortBy value: its first value of the
// attribute, as a number or as a string (lower-cased unless caseExact).
type sortKey struct {
	has bool
	num bool
	f   float64
	s   string
}

func (s *sorted) add(it item, seq int) {
	if s.keep == 0 {
		return
	}
	e := sortEntry{key: sortKeyOf(it, s.path), seq: seq, it: it}
	if len(s.entries) < s.keep {
		heap.Push(s, e)
		return
	}
	if s.before(e, s.entries[0]) {
		s.entries[0] = e
		heap.Fix(s, 0)
	}
}

// page sorts what was kept and returns it from position from on.
func (s *sorted) page(from int) []item {
	slices.SortFunc(s.entries, func(a, b sortEntry) int {
		if s.before(a, b) {
			return -1
		}
		return 1
	})
	var out []item
	for i := from; i < len(s.entries); i++ {
		out = append(out, s.entries[i].it)
	}
	return out
}

// before reports whether a comes before b in the response.
func (s *sorted) before(a, b sortEntry) bool {
	if a.key.has != b.key.has {
		return a.key.has // missing values last
	}
	if a.key.has {
		var less, greater bool
		if a.key.num && b.key.num {
			less, greater = a.key.f < b.key.f, a.key.f > b.key.f
		} else {
			less, greater = a.key.s < b.key.s, a.key.s > b.key.s
		}
		if s.descending {
			less, greater = greater, less
		}
		if less || greater {
			return less
		}
	}
	return a.seq < b.seq
}

// heap.Interface, with the entry that comes last on top.
func (s *sorted) Len() int           { return len(s.entries) }
func (s *sorted) Less(i, j int) bool { return s.before(s.entries[j], s.entries[i]) }
func (s *sorted) Swap(i, j int)      { s.entries[i], s.entries[j] = s.entries[j], s.entries[i] }
func (s *sorted) Push(x any)         { s.entries = append(s.entries, x.(sortEntry)) }
func (s *sorted) Pop() any {
	e := s.entries[len(s.entries)-1]
	s.entries = s.entries[:len(s.entries)-1]
	return e
}

func sortKeyOf(it item, ap fp.AttributePath) sortKey {
	r, err := scope{kind: it.kind}.resolve(ap)
	if err != nil {
		return sortKey{}
	}
	vals := r.values(it.doc)
	if len(vals) == 0 {
		return sortKey{}
	}
	switch v := vals[0].(type) {
	case float64:
		return sortKey{has: true, num: true, f: v}
	case json.Number:
		f, _ := v.Float64()
		return sortKey{has: true, num: true, f: f}
	}
	leaf, _ := r.leaf()
	s := toSortString(vals[0])
	if !leaf.CaseExact() {
		s = strings.ToLower(s)
	}
	return sortKey{has: true, s: s}
}

func toSortString(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case bool:
		return strconv.FormatBool(v)
	}
	raw, _ := json.Marshal(v)
	return string(raw)
}
