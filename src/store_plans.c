/*-------------------------------------------------------------------------
 *
 * store_plans.c
 *		The shared tables of plan sampling (see plan_sample.c for how they
 *		are fed): the slow fingerprints, each with its kept plan and the
 *		budget of instrumented executions still to sample; the plan
 *		findings; the statements paginated with a deep OFFSET.
 *
 * Shared memory (the segment "perfguard_plans", sized and attached by
 * store.c, fixed at start-up):
 *	- PFG_MAX_SLOW (256) slow fingerprints, each with its plan text of at most
 *	  PFG_PLAN_LEN (8 kB) bytes: about 2.1 MB.  A fixed array searched
 *	  linearly; when full, the least recently seen entry is evicted.
 *	- PFG_MAX_FINDINGS (1024) plan findings, ~1.2 kB each: about 1.3 MB,
 *	  a fixed-size shared hash; when full, the oldest finding is evicted.
 *	- PFG_MAX_OFFSETS (1024) deep-OFFSET statements, ~100 bytes each.
 * Evictions are counted in perfguard.info.dropped_events.  Nothing here is
 * saved across a restart (XXX: the statement store is; samples are cheap to
 * collect again).
 *
 * Lock protocol: three LWLocks of the tranche "perfguard_plans", one per
 * table.  Claims of the sample budget, updates and inserts take the table's
 * lock exclusively; lookups that decide whether text must be built and the
 * readers (views) take it shared.  While a lock is held nothing can ERROR:
 * callers build text before, and it is only copied under the lock.  The
 * arming generation (an atomic) is bumped under the slow-table lock
 * whenever the set of armed fingerprints changes, so that backends rebuild
 * their local cache of armed fingerprints only then.
 *
 * Copyright (c) 2026, perfguard developers
 *
 * IDENTIFICATION
 *	  src/store_plans.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "common/int.h"
#include "mb/pg_wchar.h"
#include "port/atomics.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "utils/hsearch.h"
#include "utils/timestamp.h"

#include "store.h"
#include "store_plans.h"

typedef struct pfgPlanShared
{
	pg_atomic_uint32 armed_gen; /* bumped when the armed set changes */
	pfgSlowEntry slow[PFG_MAX_SLOW];
} pfgPlanShared;

static const char *const plan_finding_names[PFG_PLAN_NCODES] = {
	NULL,
	"seq_scan_large",
	"nested_loop_many",
	"sort_spill",
	"hash_batches",
	"misestimate",
	"unbounded_result"
};

/*---- local state ----*/
static pfgPlanShared *plan_shared = NULL;

/* The armed generation, once attached (pfg_plans_ready, inline). */
pg_atomic_uint32 *pfg_plans_armed_gen_ptr = NULL;
static HTAB *findings_htab = NULL;
static HTAB *offsets_htab = NULL;
static LWLock *slow_lock = NULL;
static LWLock *findings_lock = NULL;
static LWLock *offsets_lock = NULL;

/*
 * pfg_plans_shmem_size
 *		Shared memory of the three tables.
 */
Size
pfg_plans_shmem_size(void)
{
	Size		size = MAXALIGN(sizeof(pfgPlanShared));

	size = add_size(size, hash_estimate_size(PFG_MAX_FINDINGS,
											 sizeof(pfgPlanFinding)));
	size = add_size(size, hash_estimate_size(PFG_MAX_OFFSETS,
											 sizeof(pfgOffsetEntry)));
	return size;
}

/*
 * pfg_plans_shmem_attach
 *		Create or attach to the slow table and the two shared hashes.  Called
 *		by store.c with AddinShmemInitLock held; "locks" is the tranche
 *		"perfguard_plans".
 */
void
pfg_plans_shmem_attach(LWLockPadded *locks)
{
	bool		found;
	HASHCTL		info;

	plan_shared = ShmemInitStruct("perfguard_plans", sizeof(pfgPlanShared),
								  &found);
	if (!found)
	{
		memset(plan_shared, 0, sizeof(pfgPlanShared));
		pg_atomic_init_u32(&plan_shared->armed_gen, 1);
	}
	slow_lock = &locks[0].lock;
	findings_lock = &locks[1].lock;
	offsets_lock = &locks[2].lock;

	memset(&info, 0, sizeof(info));
	info.keysize = sizeof(pfgPlanFindingKey);
	info.entrysize = sizeof(pfgPlanFinding);
	findings_htab = ShmemInitHash("perfguard plan findings",
								  PFG_MAX_FINDINGS, PFG_MAX_FINDINGS,
								  &info, HASH_ELEM | HASH_BLOBS);
	memset(&info, 0, sizeof(info));
	info.keysize = sizeof(pfgStmtKey);
	info.entrysize = sizeof(pfgOffsetEntry);
	offsets_htab = ShmemInitHash("perfguard offsets",
								 PFG_MAX_OFFSETS, PFG_MAX_OFFSETS,
								 &info, HASH_ELEM | HASH_BLOBS);
	pfg_plans_armed_gen_ptr = &plan_shared->armed_gen;
}

/*
 * pfg_plan_finding_name
 *		The name of a plan finding code, or NULL for an unknown one.
 */
const char *
pfg_plan_finding_name(int code)
{
	if (code <= 0 || code >= PFG_PLAN_NCODES)
		return NULL;
	return plan_finding_names[code];
}

/*---- the sample budget ----*/

/*
 * pfg_plans_armed_gen
 *		The arming generation: it moves whenever the set of armed
 *		fingerprints changes.  One atomic read, no lock.
 */

/*
 * pfg_plans_armed
 *		Copy the fingerprints that still have a sample budget into out[]
 *		(at most "max"); returns how many.  Takes the slow-table lock in
 *		shared mode.
 */
int
pfg_plans_armed(pfgArmed *out, int max)
{
	int			i;
	int			n = 0;

	LWLockAcquire(slow_lock, LW_SHARED);
	for (i = 0; i < PFG_MAX_SLOW && n < max; i++)
	{
		pfgSlowEntry *e = &plan_shared->slow[i];

		if (!e->inuse || e->budget <= 0)
			continue;
		out[n].queryid = e->key.queryid;
		out[n].dbid = e->key.dbid;
		out[n].idx = i;
		n++;
	}
	LWLockRelease(slow_lock);
	return n;
}

/*
 * pfg_plans_claim
 *		Claim one unit of the sample budget of slow slot "idx", if it still
 *		holds this fingerprint and has budget left.
 */
bool
pfg_plans_claim(int idx, uint64 queryid, Oid dbid)
{
	bool		claimed = false;
	pfgSlowEntry *e = &plan_shared->slow[idx];

	LWLockAcquire(slow_lock, LW_EXCLUSIVE);
	if (e->inuse && e->budget > 0 && e->key.queryid == queryid &&
		e->key.dbid == dbid)
	{
		claimed = true;
		if (--e->budget == 0)
			pg_atomic_fetch_add_u32(&plan_shared->armed_gen, 1);
	}
	LWLockRelease(slow_lock);
	return claimed;
}

/*---- slow queries ----*/

/*
 * slow_find
 *		Index of the slow entry for "key", or -1.  Caller holds slow_lock.
 */
static int
slow_find(const pfgStmtKey *key)
{
	int			i;

	for (i = 0; i < PFG_MAX_SLOW; i++)
	{
		pfgSlowEntry *e = &plan_shared->slow[i];

		if (e->inuse && e->key.queryid == key->queryid &&
			e->key.userid == key->userid && e->key.dbid == key->dbid &&
			e->key.toplevel == key->toplevel)
			return i;
	}
	return -1;
}

/*
 * slow_victim
 *		A free slot, else the least recently seen one.  Caller holds slow_lock
 *		exclusively.
 */
static int
slow_victim(void)
{
	int			i;
	int			victim = 0;

	for (i = 0; i < PFG_MAX_SLOW; i++)
	{
		if (!plan_shared->slow[i].inuse)
			return i;
		if (plan_shared->slow[i].last_seen < plan_shared->slow[victim].last_seen)
			victim = i;
	}
	return victim;
}

/*
 * pfg_plans_slow_find
 *		Is "key" in the slow table?  If so, tell whether its kept plan has
 *		actual rows and how long its execution took (to decide whether a new
 *		sample's plan text is worth building).
 */
bool
pfg_plans_slow_find(const pfgStmtKey *key, bool *plan_analyzed,
					double *plan_ms)
{
	int			idx;

	LWLockAcquire(slow_lock, LW_SHARED);
	idx = slow_find(key);
	if (idx >= 0)
	{
		*plan_analyzed = plan_shared->slow[idx].plan_analyzed;
		*plan_ms = plan_shared->slow[idx].plan_ms;
	}
	LWLockRelease(slow_lock);
	return idx >= 0;
}

/*
 * pfg_plans_slow_record
 *		Account a slow or sampled execution of "key": insert the entry (a
 *		slow execution arms the fingerprint with PFG_SAMPLE_BUDGET
 *		instrumented runs) or update it, keep "text" as its plan when it is
 *		the best sample so far, re-arm a fingerprint that stays slow.  An
 *		execution that is not slow and whose entry was evicted meanwhile is
 *		dropped.  The slowest execution's request gives the route; a
 *		measured sample adds to the time spent in the plan's work.  Only
 *		copies under the lock.
 */
void
pfg_plans_slow_record(const pfgStmtKey *key, bool slow, bool analyzed,
					  double ms, const char *text, const char *route,
					  const pfgSampleTime *time)
{
	TimestampTz now = GetCurrentStatementStartTimestamp();
	int			idx;
	int			len = text ? strlen(text) : 0;

	/* cut between characters: the plan must stay valid text */
	if (len > PFG_PLAN_LEN - 1)
		len = pg_mbcliplen(text, len, PFG_PLAN_LEN - 1);

	LWLockAcquire(slow_lock, LW_EXCLUSIVE);
	idx = slow_find(key);
	if (idx < 0)
	{
		pfgSlowEntry *e;

		if (!slow)
		{
			/* evicted meanwhile and this one is fast: drop it */
			LWLockRelease(slow_lock);
			return;
		}
		idx = slow_victim();
		e = &plan_shared->slow[idx];
		if (e->inuse)
		{
			pfg_store_count_dropped_event();
			if (e->budget > 0)
				pg_atomic_fetch_add_u32(&plan_shared->armed_gen, 1);
		}
		memset(e, 0, offsetof(pfgSlowEntry, plan));
		e->plan[0] = '\0';
		e->inuse = true;
		e->key = *key;
		e->first_seen = now;
		e->plan_ms = -1;
		/* arm: the next executions are instrumented */
		e->last_armed = now;
		if (!analyzed)
		{
			e->budget = PFG_SAMPLE_BUDGET;
			pg_atomic_fetch_add_u32(&plan_shared->armed_gen, 1);
		}
	}
	{
		pfgSlowEntry *e = &plan_shared->slow[idx];

		if (slow)
		{
			e->slow_calls++;
			e->slow_total_ms += ms;
			if (ms > e->slow_max_ms || e->route[0] == '\0')
				strlcpy(e->route, route ? route : "", PFG_ROUTE_LEN);
			if (ms > e->slow_max_ms)
				e->slow_max_ms = ms;
		}
		if (analyzed)
			e->samples++;
		if (time && time->measured)
		{
			e->work_samples++;
			e->work_ms += Min(time->work_ms, ms);
			e->work_wall_ms += ms;
		}
		if (time && time->wait_what && e->wait_what[0] == '\0')
			strlcpy(e->wait_what, time->wait_what, PFG_WAIT_LEN);
		e->last_seen = now;

		if (text != NULL &&
			(e->plan_ms < 0 ||
			 (analyzed && (!e->plan_analyzed || ms > e->plan_ms)) ||
			 (!analyzed && !e->plan_analyzed && ms > e->plan_ms)))
		{
			memcpy(e->plan, text, len);
			e->plan[len] = '\0';
			e->plan_len = len;
			e->plan_ms = ms;
			e->plan_analyzed = analyzed;
		}

		/* still slow without a fresh sample for a while: sample once more */
		if (slow && !analyzed && e->budget <= 0 &&
			TimestampDifferenceExceeds(e->last_armed, now,
									   PFG_REARM_SECS * 1000))
		{
			e->budget = 1;
			e->last_armed = now;
			pg_atomic_fetch_add_u32(&plan_shared->armed_gen, 1);
		}
	}
	LWLockRelease(slow_lock);

}

/*---- plan findings ----*/

/*
 * findings_make_room
 *		Evict the least recently seen finding when the table is full.  Caller
 *		holds findings_lock exclusively.
 */
static void
findings_make_room(void)
{
	HASH_SEQ_STATUS status;
	pfgPlanFinding *f;
	pfgPlanFinding *victim = NULL;

	if (hash_get_num_entries(findings_htab) < PFG_MAX_FINDINGS)
		return;
	hash_seq_init(&status, findings_htab);
	while ((f = hash_seq_search(&status)) != NULL)
		if (victim == NULL || f->last_seen < victim->last_seen)
			victim = f;
	if (victim)
	{
		pfgPlanFindingKey k = victim->key;

		hash_search(findings_htab, &k, HASH_REMOVE, NULL);
		pfg_store_count_dropped_event();
	}
}

/*
 * clip_partial_char
 *		Drop a multibyte character that a length-limited snprintf cut in two
 *		at the end of s.
 */
static void
clip_partial_char(char *s)
{
	int			n = strlen(s);

	s[pg_mbcliplen(s, n, n)] = '\0';
}

/*
 * pfg_plans_record_findings
 *		Add the findings of one execution to the shared table.  Text was
 *		built before; this only copies.
 */
void
pfg_plans_record_findings(const pfgStmtKey *key, pfgFound *found, int n,
						  double ms, const char *route)
{
	TimestampTz now = GetCurrentStatementStartTimestamp();
	int			i;

	/* texts cut by snprintf must not end in half a character */
	for (i = 0; i < n; i++)
	{
		clip_partial_char(found[i].detail);
		clip_partial_char(found[i].suggestion);
	}

	LWLockAcquire(findings_lock, LW_EXCLUSIVE);
	for (i = 0; i < n; i++)
	{
		pfgFound   *x = &found[i];
		pfgPlanFindingKey k;
		pfgPlanFinding *f;
		bool		isnew;

		memset(&k, 0, sizeof(k));
		k.stmt = *key;
		k.code = x->code;
		k.relid = x->relid;
		f = hash_search(findings_htab, &k, HASH_FIND, NULL);
		if (f == NULL)
		{
			findings_make_room();
			f = hash_search(findings_htab, &k, HASH_ENTER_NULL, &isnew);
			if (f == NULL)
			{
				pfg_store_count_dropped_event();
				continue;
			}
			memset((char *) f + sizeof(k), 0, sizeof(*f) - sizeof(k));
		}
		f->occurrences++;
		f->total_ms += ms;
		f->value_sum += x->value;
		if (x->value >= f->value_max || f->detail[0] == '\0')
		{
			/* the worst case seen gives the text */
			f->value_max = Max(f->value_max, x->value);
			strlcpy(f->node, x->node, PFG_NODE_LEN);
			strlcpy(f->relation, x->relation, PFG_REL_LEN);
			strlcpy(f->detail, x->detail, PFG_DETAIL_LEN);
			strlcpy(f->suggestion, x->suggestion, PFG_SUGGEST_LEN);
			strlcpy(f->route, route ? route : "", PFG_ROUTE_LEN);
		}
		f->last_seen = now;
	}
	LWLockRelease(findings_lock);
}

/*
 * pfg_plans_finding_exists
 *		Is there a finding of this code (about no particular relation) for
 *		the statement?  Lets callers skip building text that is already kept.
 */
bool
pfg_plans_finding_exists(const pfgStmtKey *key, int code)
{
	pfgPlanFindingKey k;
	bool		exists;

	memset(&k, 0, sizeof(k));
	k.stmt = *key;
	k.code = code;
	LWLockAcquire(findings_lock, LW_SHARED);
	exists = hash_search(findings_htab, &k, HASH_FIND, NULL) != NULL;
	LWLockRelease(findings_lock);
	return exists;
}

/*---- deep offsets ----*/

/*
 * pfg_plans_record_offset
 *		An execution whose top Limit skipped "offset" rows.
 */
void
pfg_plans_record_offset(const pfgStmtKey *key, int64 offset, int64 rows,
						double ms, const char *route)
{
	pfgOffsetEntry *e;
	bool		isnew;

	LWLockAcquire(offsets_lock, LW_EXCLUSIVE);
	e = hash_search(offsets_htab, key, HASH_FIND, NULL);
	if (e == NULL)
	{
		if (hash_get_num_entries(offsets_htab) >= PFG_MAX_OFFSETS)
		{
			HASH_SEQ_STATUS status;
			pfgOffsetEntry *o;
			pfgOffsetEntry *victim = NULL;

			hash_seq_init(&status, offsets_htab);
			while ((o = hash_seq_search(&status)) != NULL)
				if (victim == NULL || o->last_seen < victim->last_seen)
					victim = o;
			if (victim)
			{
				pfgStmtKey	k = victim->key;

				hash_search(offsets_htab, &k, HASH_REMOVE, NULL);
				pfg_store_count_dropped_event();
			}
		}
		e = hash_search(offsets_htab, key, HASH_ENTER_NULL, &isnew);
		if (e == NULL)
		{
			LWLockRelease(offsets_lock);
			pfg_store_count_dropped_event();
			return;
		}
		memset((char *) e + sizeof(pfgStmtKey), 0,
			   sizeof(*e) - sizeof(pfgStmtKey));
	}
	e->calls++;
	e->total_ms += ms;
	/* saturate: OFFSET 9223372036854775807 twice must not wrap around */
	if (pg_add_s64_overflow(e->sum_offset, offset, &e->sum_offset))
		e->sum_offset = PG_INT64_MAX;
	e->max_offset = Max(e->max_offset, offset);
	e->rows_returned += rows;
	if (ms >= e->max_ms)
	{
		/* the route of the slowest execution */
		e->max_ms = ms;
		strlcpy(e->route, route ? route : "", PFG_ROUTE_LEN);
	}
	e->last_seen = GetCurrentStatementStartTimestamp();
	LWLockRelease(offsets_lock);
}

/*
 * pfg_plans_reset
 *		Clear the slow table, the findings and the offsets (perfguard.reset, through the store).
 */
void
pfg_plans_reset(void)
{
	HASH_SEQ_STATUS status;
	void	   *entry;

	if (plan_shared == NULL)
		return;

	LWLockAcquire(slow_lock, LW_EXCLUSIVE);
	memset(plan_shared->slow, 0, sizeof(plan_shared->slow));
	pg_atomic_fetch_add_u32(&plan_shared->armed_gen, 1);
	LWLockRelease(slow_lock);

	LWLockAcquire(findings_lock, LW_EXCLUSIVE);
	hash_seq_init(&status, findings_htab);
	while ((entry = hash_seq_search(&status)) != NULL)
		hash_search(findings_htab, entry, HASH_REMOVE, NULL);
	LWLockRelease(findings_lock);

	LWLockAcquire(offsets_lock, LW_EXCLUSIVE);
	hash_seq_init(&status, offsets_htab);
	while ((entry = hash_seq_search(&status)) != NULL)
		hash_search(offsets_htab, entry, HASH_REMOVE, NULL);
	LWLockRelease(offsets_lock);
}

/*---- copies for the views ----*/

/*
 * pfg_plans_copy_slow
 *		A palloc'd copy of the slow entries in use; returns their number.
 */
int
pfg_plans_copy_slow(pfgSlowEntry **out)
{
	pfgSlowEntry *copy = palloc(sizeof(pfgSlowEntry) * PFG_MAX_SLOW);
	int			n = 0;
	int			i;

	LWLockAcquire(slow_lock, LW_SHARED);
	for (i = 0; i < PFG_MAX_SLOW; i++)
		if (plan_shared->slow[i].inuse)
			memcpy(&copy[n++], &plan_shared->slow[i], sizeof(pfgSlowEntry));
	LWLockRelease(slow_lock);
	for (i = 0; i < n; i++)
		copy[i].plan[PFG_PLAN_LEN - 1] = '\0';
	*out = copy;
	return n;
}

/*
 * copy_htab
 *		Copy the entries of a shared hash (at most max + 1) under its lock
 *		in shared mode.
 */
static int
copy_htab(HTAB *htab, LWLock *lock, Size entrysize, int max, void **out)
{
	char	   *copy = palloc(entrysize * (max + 1));
	HASH_SEQ_STATUS status;
	void	   *e;
	int			n = 0;

	LWLockAcquire(lock, LW_SHARED);
	hash_seq_init(&status, htab);
	while ((e = hash_seq_search(&status)) != NULL)
	{
		if (n > max)
		{
			hash_seq_term(&status);
			break;
		}
		memcpy(copy + entrysize * n++, e, entrysize);
	}
	LWLockRelease(lock);
	*out = copy;
	return n;
}

int
pfg_plans_copy_findings(pfgPlanFinding **out)
{
	return copy_htab(findings_htab, findings_lock, sizeof(pfgPlanFinding),
					 PFG_MAX_FINDINGS, (void **) out);
}

int
pfg_plans_copy_offsets(pfgOffsetEntry **out)
{
	return copy_htab(offsets_htab, offsets_lock, sizeof(pfgOffsetEntry),
					 PFG_MAX_OFFSETS, (void **) out);
}
