package redisstore

import (
	"context"
	"errors"
	"slices"
	"strconv"

	"github.com/redis/go-redis/v9"
)

// Check of the member filter indexes (filters.go): every facet of a
// record has its entry at the record's creation position, no entry
// outlives its record or facet, and the workspace carries the marker that
// its indexes (the name index too) are complete.

// scriptCheckFacet: KEYS = facet set, users, order (ix:uo), facet list
// (ix:uf); ARGV = user id, record, facet, fix. When the user's record is
// still the one given, has a position in the order index and lacks the
// facet's entry, it adds the entry at that position (and the facet to
// the list). Returns 1 when the entry was missing.
var scriptCheckFacet = redis.NewScript(`
local set, users, order, registry = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local id, rec, facet, fix = ARGV[1], ARGV[2], ARGV[3], ARGV[4] == '1'
if redis.call('HGET', users, id) ~= rec or redis.call('ZSCORE', set, id) then return 0 end
local score = redis.call('ZSCORE', order, id)
if not score then return 0 end
if fix then
  redis.call('ZADD', set, score, id)
  redis.call('SADD', registry, facet)
end
return 1
`)

// checkUserFacets adds the filter index entries the records of batch
// lack (their order entries are checked first).
func (c *checker) checkUserFacets(ctx context.Context, ws string, batch []userRec) error {
	type want struct {
		r     userRec
		facet string
		score *redis.FloatCmd
	}
	var wants []want
	for _, r := range batch {
		for _, f := range userFacets(r.u) {
			wants = append(wants, want{r: r, facet: f})
		}
	}
	if err := c.pipe(ctx, func(p redis.Pipeliner) {
		for i := range wants {
			wants[i].score = p.ZScore(ctx, c.s.wsKey(ws, "ix:uf:"+wants[i].facet), wants[i].r.id)
		}
	}); err != nil {
		return err
	}
	keys := []string{"", c.s.wsKey(ws, "users"), c.s.wsKey(ws, "ix:uo"), c.s.wsKey(ws, "ix:uf")}
	for _, w := range wants {
		if _, err := w.score.Result(); err == nil {
			continue
		}
		keys[0] = c.s.wsKey(ws, "ix:uf:"+w.facet)
		code, _, err := c.run(ctx, scriptCheckFacet, keys, w.r.id, w.r.rec, w.facet, c.fixArg())
		if err != nil {
			return err
		}
		if code == 1 {
			c.found(KindUserIndexMissing, keys[0], w.r.id, "user "+w.r.id+" is missing from the member filter index "+
				w.facet+"; it is added")
		}
	}
	return nil
}

// walkFacetIndexes removes the filter index entries that no record
// backs, and moves those whose position is not the record's creation
// position; then marks the workspace's indexes complete (with Fix).
func (c *checker) walkFacetIndexes(ctx context.Context, ws string) error {
	users, order := c.s.wsKey(ws, "users"), c.s.wsKey(ws, "ix:uo")
	facets, err := c.s.rdb.SMembers(ctx, c.s.wsKey(ws, "ix:uf")).Result()
	if err != nil {
		return c.s.wrap(err)
	}
	slices.Sort(facets)
	for _, f := range facets {
		key := c.s.wsKey(ws, "ix:uf:"+f)
		err := c.scanEach(ctx, func(cur uint64) *redis.ScanCmd { return c.s.rdb.ZScan(ctx, key, cur, "", checkBatch) },
			func(pairs []string) error {
				c.tick(len(pairs) / 2)
				recs := make([]*redis.StringCmd, len(pairs)/2)
				pos := make([]*redis.FloatCmd, len(pairs)/2)
				if err := c.pipe(ctx, func(p redis.Pipeliner) {
					for i := range recs {
						recs[i] = p.HGet(ctx, users, pairs[2*i])
						pos[i] = p.ZScore(ctx, order, pairs[2*i])
					}
				}); err != nil {
					return err
				}
				for i := range recs {
					if err := c.checkFacetEntry(ctx, ws, f, pairs[2*i], pairs[2*i+1], recs[i], pos[i]); err != nil {
						return err
					}
				}
				return nil
			})
		if err != nil {
			return err
		}
	}
	marker := c.s.wsKey(ws, "ix:ufv")
	v, err := c.s.rdb.Get(ctx, marker).Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		return c.s.wrap(err)
	}
	if v != "" && v != "1" {
		return nil // built, by this version or a later one
	}
	if c.o.Fix {
		// Every record's entries were added by the record walk.
		if err := c.s.rdb.Set(ctx, marker, indexesBuilt, 0).Err(); err != nil {
			return c.s.wrap(err)
		}
	}
	if v == "" {
		c.found(KindFilterIndexUnbuilt, marker, "", "the member filter indexes of the workspace were never built "+
			"(its members were written by an earlier version); they are built and the workspace is marked")
	} else {
		c.found(KindNameIndexUnbuilt, marker, "", "the name index of the workspace was never built "+
			"(its members were written by an earlier version); it is built and the workspace is marked")
	}
	return nil
}

// checkFacetEntry checks one entry (id at score) of facet f against the
// user's record and order position as read.
func (c *checker) checkFacetEntry(ctx context.Context, ws, f, id, score string, rec *redis.StringCmd, pos *redis.FloatCmd) error {
	users, key := c.s.wsKey(ws, "users"), c.s.wsKey(ws, "ix:uf:"+f)
	v, err := rec.Result()
	if errors.Is(err, redis.Nil) {
		ok, err := c.delEntry(ctx, key, "zset", id, id, recCond{key: users, field: id, mode: "missing"})
		if ok {
			c.found(KindUserIndexDangling, key, id, "the member filter entry names user "+id+", which does not exist; it is removed")
		}
		return err
	}
	if err != nil {
		return c.s.wrap(err)
	}
	u, err := decodeUser(ws, v)
	if err != nil {
		return nil // reported by the record walk
	}
	p, perr := pos.Result()
	claims := slices.Contains(userFacets(u), f)
	if claims && (perr != nil || strconv.FormatFloat(p, 'f', -1, 64) == score) {
		return nil // right, or not in the order index yet (the order walk reports that)
	}
	cond := recCond{key: users, field: id, mode: "equals", value: v}
	ok, err := c.delEntry(ctx, key, "zset", id, id, cond)
	if err != nil || !ok {
		return err
	}
	if !claims {
		c.found(KindUserIndexStale, key, id, "the member filter entry names user "+id+", whose record says otherwise; it is removed")
		return nil
	}
	// At another position than the user's creation: put it back at the
	// right one.
	if c.o.Fix {
		if _, _, err := c.run(ctx, scriptCheckFacet, []string{key, users, c.s.wsKey(ws, "ix:uo"), c.s.wsKey(ws, "ix:uf")},
			id, v, f, c.fixArg()); err != nil {
			return err
		}
	}
	c.found(KindUserIndexStale, key, id, "the member filter entry of user "+id+" is not at the user's creation position; it is moved")
	return nil
}
