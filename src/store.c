/*-------------------------------------------------------------------------
 *
 * store.c
 *		perfguard's shared memory and its statistics tables: statements,
 *		scope findings (N+1, duplicates, write loops, sequences), requests
 *		per route, failed statements and suppression rules; the stats file
 *		written at a clean shutdown and read at start-up.
 *
 * This file is the only owner of shared memory: pfg_store_shmem_request
 * sums the sizes of every part (its five tables, built on table.c; the plan
 * tables of store_plans.c; the remembered advice of store_advice.c; the
 * execution evidence of the index advisor, store_evidence.c; the cached
 * advice and index sightings of store_cache.c; the open requests of
 * store_requests.c; the pending statement counters of store_pending.c) and
 * requests their LWLock tranches, and pfg_store_shmem_startup creates or
 * attaches to each part and, in the postmaster, loads the saved files and
 * registers the one shutdown callback that writes them.
 *
 * Lock protocol (cf. pg_stat_statements), for the five tables of this file:
 *	- To look up an entry and update its counters: the partition LWLock in
 *	  shared mode, then the entry's spinlock around the counter updates.
 *	- To create or evict an entry: the partition LWLock in exclusive mode.
 *	  The normalised query text is built *before* the exclusive lock is taken.
 *	- To reset: every partition lock of a table in exclusive mode, one at a
 *	  time.
 *	- Readers (the views) take each partition lock in shared mode in turn and
 *	  copy each entry under its spinlock before building tuples outside the
 *	  lock.
 *	- perfguard.errors is written from emit_log_hook, in the middle of error
 *	  reporting: there the locks are only tried (a busy partition drops the
 *	  event, counted in perfguard.info).
 * While any of these locks is held, nothing here can ERROR and nothing
 * touches the catalogs.  store_plans.c, store_advice.c and store_evidence.c
 * state their own.
 *
 * Persistence: the postmaster writes PFG_DUMP_FILE at clean shutdown (when
 * perfguard.save is on) and reads it back (then unlinks it) when shared
 * memory is created, through persist.c.  A missing, short, foreign or
 * corrupt file gives a WARNING and an empty store.
 *
 * Copyright (c) 2026, perfguard developers
 *
 * IDENTIFICATION
 *	  src/store.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "access/xact.h"
#include "common/hashfn.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "port/atomics.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "utils/timestamp.h"

#include "fingerprint.h"
#include "persist.h"
#include "store.h"
#include "store_advice.h"
#include "store_cache.h"
#include "store_evidence.h"
#include "store_pending.h"
#include "text_mask.h"
#include "store_plans.h"
#include "store_requests.h"

#define PFG_NTABLES			5
#define PFG_DUMP_FILE		"pg_stat/perfguard.stat"
#define PFG_FILE_MAGIC		0x50464731	/* "PFG1" */
#define PFG_FILE_FORMAT		3	/* 3: findings carry their fix */

/* Global shared state. */
typedef struct pfgSharedState
{
	slock_t		mutex;			/* protects stats_reset */
	TimestampTz stats_reset;
	pg_atomic_uint64 dropped_entries;	/* statements evicted */
	pg_atomic_uint64 dropped_events;	/* findings/requests evicted or lost */
} pfgSharedState;

/* The tables, in the order of the stats file. */
enum
{
	PFG_TAB_STMT = 0,
	PFG_TAB_FINDING = 1,
	PFG_TAB_REQUEST = 2,
	PFG_TAB_ERROR = 3,
	PFG_TAB_IGNORE = 4
};

/*---- local state ----*/
static pfgSharedState *pfg_shared = NULL;
static pfgTable pfg_tables[PFG_NTABLES];

/*---- static functions ----*/
static void store_shmem_shutdown(int code, Datum arg);
static void store_load(void);
static void store_dump(void);

/*
 * Capacity and entry sizes of each table, from perfguard.max_statements.
 */
static int
table_capacity(int which)
{
	switch (which)
	{
		case PFG_TAB_STMT:
			return pfg_max_statements;
		case PFG_TAB_FINDING:
			return Max(pfg_max_statements / 2, 256);
		case PFG_TAB_ERROR:
			return Max(pfg_max_statements / 5, 256);
		case PFG_TAB_IGNORE:
			return 256;
		default:
			return Max(pfg_max_statements / 10, 128);
	}
}

static Size
table_entrysize(int which)
{
	switch (which)
	{
		case PFG_TAB_STMT:
			return sizeof(pfgStmtEntry);
		case PFG_TAB_FINDING:
			return sizeof(pfgFindingEntry);
		case PFG_TAB_ERROR:
			return sizeof(pfgErrorEntry);
		case PFG_TAB_IGNORE:
			return sizeof(pfgIgnoreEntry);
		default:
			return sizeof(pfgRequestEntry);
	}
}

static Size
table_keysize(int which)
{
	switch (which)
	{
		case PFG_TAB_STMT:
			return sizeof(pfgStmtKey);
		case PFG_TAB_FINDING:
			return sizeof(pfgFindingKey);
		case PFG_TAB_ERROR:
			return sizeof(pfgErrorKey);
		case PFG_TAB_IGNORE:
			return sizeof(pfgIgnoreKey);
		default:
			return sizeof(pfgRequestKey);
	}
}

/*
 * store_memsize
 *		Shared memory of this file's tables at the current settings.
 */
static Size
store_memsize(void)
{
	Size		size = MAXALIGN(sizeof(pfgSharedState));
	int			i;

	for (i = 0; i < PFG_NTABLES; i++)
		size = add_size(size, pfg_table_shmem_size(table_capacity(i),
												   table_entrysize(i)));
	return size;
}

/*
 * pfg_store_shmem_request
 *		Request all of perfguard's shared memory and LWLocks.  Called from
 *		perfguard.c's shmem_request_hook (PostgreSQL 15 refuses requests
 *		made anywhere else).
 */
void
pfg_store_shmem_request(void)
{
	RequestAddinShmemSpace(store_memsize());
	RequestNamedLWLockTranche("perfguard", PFG_NPARTS * PFG_NTABLES);
	RequestAddinShmemSpace(pfg_plans_shmem_size());
	RequestNamedLWLockTranche("perfguard_plans", PFG_PLANS_NLOCKS);
	RequestAddinShmemSpace(pfg_advice_shmem_size());
	RequestNamedLWLockTranche("perfguard_advice", 1);
	RequestAddinShmemSpace(pfg_cache_shmem_size());
	RequestNamedLWLockTranche("perfguard_cache", PFG_CACHE_NLOCKS);
	RequestAddinShmemSpace(pfg_requests_shmem_size());
	RequestNamedLWLockTranche("perfguard_requests", PFG_NPARTS);
	RequestAddinShmemSpace(pfg_evidence_shmem_size());
	RequestNamedLWLockTranche("perfguard_evidence", 1);
	RequestAddinShmemSpace(pfg_pending_shmem_size());
}

/*
 * pfg_store_shmem_startup
 *		Create or attach to every part of the shared state.  In the
 *		postmaster (or a single-user backend) this also loads the saved files
 *		and registers the dump at shutdown.
 */
void
pfg_store_shmem_startup(void)
{
	bool		found;
	bool		reqfound;
	bool		pendfound;
	char	   *base;
	char	   *reqbase;
	char	   *pendbase;
	LWLockPadded *locks;
	int			i;

	pfg_shared = NULL;
	pfg_store_attached = false;

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);

	base = ShmemInitStruct("perfguard", store_memsize(), &found);
	locks = GetNamedLWLockTranche("perfguard");
	pfg_shared = (pfgSharedState *) base;
	if (!found)
	{
		SpinLockInit(&pfg_shared->mutex);
		pfg_shared->stats_reset = GetCurrentTimestamp();
		pg_atomic_init_u64(&pfg_shared->dropped_entries, 0);
		pg_atomic_init_u64(&pfg_shared->dropped_events, 0);
	}
	base += MAXALIGN(sizeof(pfgSharedState));
	for (i = 0; i < PFG_NTABLES; i++)
	{
		pfg_table_attach(&pfg_tables[i], base, !found, table_capacity(i),
						 table_keysize(i), table_entrysize(i),
						 locks + i * PFG_NPARTS,
						 (i == PFG_TAB_STMT) ? &pfg_shared->dropped_entries :
						 &pfg_shared->dropped_events);
		base += pfg_table_shmem_size(table_capacity(i), table_entrysize(i));
	}
	pfg_plans_shmem_attach(GetNamedLWLockTranche("perfguard_plans"));
	pfg_advice_shmem_attach(&(GetNamedLWLockTranche("perfguard_advice"))->lock);
	pfg_cache_shmem_attach(GetNamedLWLockTranche("perfguard_cache"));
	reqbase = ShmemInitStruct("perfguard_requests", pfg_requests_shmem_size(),
							  &reqfound);
	pfg_requests_shmem_attach(reqbase, !reqfound,
							  GetNamedLWLockTranche("perfguard_requests"),
							  &pfg_shared->dropped_events);
	pfg_evidence_shmem_attach(&(GetNamedLWLockTranche("perfguard_evidence"))->lock);
	pendbase = ShmemInitStruct("perfguard_pending", pfg_pending_shmem_size(),
							   &pendfound);
	pfg_pending_shmem_attach(pendbase, !pendfound, &pfg_tables[PFG_TAB_STMT]);
	pfg_store_attached = true;

	LWLockRelease(AddinShmemInitLock);

	if (!IsUnderPostmaster)
		on_shmem_exit(store_shmem_shutdown, (Datum) 0);

	if (!found && !IsUnderPostmaster)
	{
		store_load();
		pfg_advice_load();
		pfg_cache_load();
	}
}

/*
 * pfg_hist_bucket_ms
 *		Representative value (geometric middle) of a bucket, in ms.
 */
double
pfg_hist_bucket_ms(int bucket)
{
	int			e;
	int			m;
	double		lo,
				hi;

	if (bucket <= 0)
		return 0.0005;
	e = (bucket - 1) / 4;
	m = (bucket - 1) % 4;
	lo = ldexp(1.0 + m / 4.0, e);
	hi = ldexp(1.0 + (m + 1) / 4.0, e);
	return sqrt(lo * hi) / 1000.0;
}

/*---- public API ----*/

/* Shared memory is attached (pfg_store_ready, inline in store.h). */
bool		pfg_store_attached = false;

/*
 * Where this backend last found the entries of its statements, by query id:
 * an application runs a few statements over and over, and a hit saves the
 * hash and the chain walk (the key is compared again under the lock).
 */
#define PFG_STMT_HINTS	PFG_PENDING_SLOTS
typedef struct stmtHint
{
	pfgStmtKey	key;
	pfgStmtEntry *entry;
} stmtHint;

static stmtHint stmt_hints[PFG_STMT_HINTS];

/*
 * pfg_store_lookup_stmt
 *		Shared-lock probe: does an entry for "key" exist?  Used to decide
 *		whether the normalised text must be built before recording.
 */
static bool
store_stmt_exists(const pfgStmtKey *key)
{
	pfgTable   *t = &pfg_tables[PFG_TAB_STMT];
	uint32		hash = pfg_table_hash(key, sizeof(*key));
	LWLock	   *lock = pfg_table_lock(t, hash);
	bool		found;

	LWLockAcquire(lock, LW_SHARED);
	found = pfg_table_lookup(t, key, hash) != NULL;
	LWLockRelease(lock);
	return found;
}

/*
 * pfg_store_record
 *		Add one execution to the statement "key".  When the entry is new, its
 *		normalised text is built from src[loc, loc+len) before the exclusive
 *		lock is taken.  Never raises an error: a failure to normalise stores
 *		no text, and a full table evicts.
 */
void
pfg_store_record(const pfgStmtKey *key, CmdType cmdtype,
				 const pfgExecStats *st, const char *src, int loc, int len)
{
	pfgTable   *t = &pfg_tables[PFG_TAB_STMT];
	pfgStmtEntry *e;
	LWLock	   *lock;
	uint32		hash;
	bool		created;
	stmtHint   *hint;
	int			slot;
	char	   *volatile norm = NULL;
	int			normlen = 0;
	TimestampTz now = GetCurrentStatementStartTimestamp();
	int			bucket = pfg_hist_bucket(st->ms);
	int32		window = (int32) (now / ((int64) pfg_window * 1000));

	if (!pfg_shared)
		return;

	/*
	 * Fastest path: a statement this backend ran just before goes to its
	 * box of pending counters (store_pending.c), no partition lock taken.
	 * Fast path: the entry exists (one shared-lock probe, through where this
	 * backend found it last when it did).  Otherwise build the normalised
	 * text with no lock held, then create the entry.
	 */
	slot = (key->queryid ^ key->toplevel) & (PFG_STMT_HINTS - 1);
	hint = &stmt_hints[slot];
	e = NULL;
	if (hint->entry != NULL && hint->key.queryid == key->queryid &&
		hint->key.userid == key->userid && hint->key.dbid == key->dbid &&
		hint->key.toplevel == key->toplevel)
	{
		if (pfg_pending_add(slot, key, hint->entry, st, now, bucket, window))
			return;
		e = pfg_table_recheck(t, hint->entry, key, LW_SHARED, &lock);
	}
	if (e == NULL)
	{
		hash = pfg_table_hash(key, sizeof(*key));
		lock = pfg_table_lock(t, hash);
		LWLockAcquire(lock, LW_SHARED);
		e = pfg_table_lookup(t, key, hash);
	}
	created = false;
	if (e == NULL)
	{
		LWLockRelease(lock);
		if (src)
		{
			MemoryContext oldcxt = CurrentMemoryContext;

			PG_TRY();
			{
				normlen = len;
				norm = pfg_normalize_query(src, loc, &normlen);
				/* keep whole characters: the text must stay valid */
				if (norm && normlen > PFG_QUERY_LEN - 1)
					normlen = pg_mbcliplen(norm, normlen, PFG_QUERY_LEN - 1);
			}
			PG_CATCH();
			{
				MemoryContextSwitchTo(oldcxt);
				FlushErrorState();
				norm = NULL;
			}
			PG_END_TRY();
		}
		e = pfg_table_upsert(t, key, &lock, &created);
		if (e == NULL)
			return;
	}
	hint->key = *key;
	hint->entry = e;
	if (created)
	{
		e->cmdtype = cmdtype;
		e->counters.first_seen = now;
		e->counters.min_ms = st->ms;
		e->counters.max_ms = st->ms;
		if (norm)
		{
			normlen = Min(normlen, PFG_QUERY_LEN - 1);
			memcpy(e->query, norm, normlen);
			e->query[normlen] = '\0';
			e->query_len = normlen;
		}
	}

	{
		pfgStmtDelta one;

		one.calls = 0;
		one.nbuckets = 0;
		(void) pfg_delta_add(&one, st, now, bucket, window);
		SpinLockAcquire(pfg_table_mutex(e));
		pfg_store_merge(&e->counters, &one);
		SpinLockRelease(pfg_table_mutex(e));
	}
	LWLockRelease(lock);
	pfg_pending_start(slot, key, e);

	if (norm)
		pfree(norm);
}

/*
 * pfg_store_ensure_text
 *		Create the entry of a statement that failed, with its text and no
 *		call counted, unless it exists.
 */
void
pfg_store_ensure_text(const pfgStmtKey *key, CmdType cmdtype,
					  const char *src, int loc, int len)
{
	pfgTable   *t = &pfg_tables[PFG_TAB_STMT];
	pfgStmtEntry *e;
	LWLock	   *lock;
	bool		created;
	char	   *norm;
	int			normlen = len;

	if (!pfg_shared || src == NULL || store_stmt_exists(key))
		return;
	norm = pfg_normalize_query(src, loc, &normlen);
	/* keep whole characters: the text must stay valid */
	if (normlen > PFG_QUERY_LEN - 1)
		normlen = pg_mbcliplen(norm, normlen, PFG_QUERY_LEN - 1);
	e = pfg_table_upsert(t, key, &lock, &created);
	if (e == NULL)
		return;
	if (created)
	{
		TimestampTz now = GetCurrentStatementStartTimestamp();

		e->cmdtype = cmdtype;
		e->counters.first_seen = now;
		e->counters.last_seen = now;
		normlen = Min(normlen, PFG_QUERY_LEN - 1);
		memcpy(e->query, norm, normlen);
		e->query[normlen] = '\0';
		e->query_len = normlen;
	}
	LWLockRelease(lock);
	pfree(norm);
}

/* Where this backend found its findings last (see pfg_store_record_finding). */
#define PFG_FINDING_HINTS	16
typedef struct findingHint
{
	pfgFindingKey key;
	pfgFindingEntry *entry;
} findingHint;

static findingHint finding_hints[PFG_FINDING_HINTS];

/*
 * pfg_store_record_finding
 *		Add a delta to an N+1 / duplicate / write-loop / sequence finding.
 *		Returns true when the caller should derive the finding's fix and store
 *		it with pfg_store_set_finding_fix(): an N+1 or a sequence whose fix is
 *		neither stored nor being derived by another backend (the claim is
 *		taken here, under the entry's spinlock, so once per new finding).
 */
bool
pfg_store_record_finding(const pfgFindingKey *key, const char *route,
						 const pfgFindingDelta *d, void **hint)
{
	pfgTable   *t = &pfg_tables[PFG_TAB_FINDING];
	pfgFindingEntry *e = NULL;
	LWLock	   *lock;
	bool		created = false;
	bool		claim = false;
	slock_t    *mutex;
	TimestampTz now = GetCurrentStatementStartTimestamp();

	if (!pfg_shared)
		return false;

	/*
	 * The caller's hint is where this finding was last time: a request
	 * updates the same finding on every repeat, so check that slot first
	 * (it may have been evicted or reset since: compare the key under the
	 * lock) before hashing and walking a chain.
	 */
	if (hint && *hint)
		e = pfg_table_recheck(t, *hint, key, LW_SHARED, &lock);
	if (e == NULL)
	{
		/* a new request: where this backend found the finding last time */
		findingHint *fh = &finding_hints[(key->queryid ^ key->route_hash ^
										   key->kind) & (PFG_FINDING_HINTS - 1)];

		if (fh->entry != NULL && memcmp(&fh->key, key, sizeof(*key)) == 0)
			e = pfg_table_recheck(t, fh->entry, key, LW_SHARED, &lock);
		if (e == NULL)
			e = pfg_table_upsert(t, key, &lock, &created);
		if (e == NULL)
			return false;
		fh->key = *key;
		fh->entry = e;
		if (hint)
			*hint = e;
	}
	if (created)
	{
		strlcpy(e->route, route ? route : "", PFG_ROUTE_LEN);
		e->cmdtype = d->cmdtype;
		e->fix_state = PFG_FIX_NONE;
	}
	mutex = pfg_table_mutex(e);
	SpinLockAcquire(mutex);
	if (created && !d->new_occurrence)
	{
		/*
		 * Reset or evicted since this scope's first flush: account the scope
		 * so far as one occurrence, not just the delta.
		 */
		e->occurrences++;
		if (key->kind == PFG_FIND_DUPLICATE)
			e->total_duplicates += d->scope_total;
		else
			e->total_repeats += d->scope_total;
		e->wasted_ms += d->scope_wasted_ms;
	}
	else
	{
		if (d->new_occurrence)
			e->occurrences++;
		e->total_repeats += d->repeats;
		e->total_duplicates += d->duplicates;
		e->wasted_ms += d->wasted_ms;
	}
	e->max_repeats = Max(e->max_repeats, d->scope_repeats);
	e->max_distinct = Max(e->max_distinct, d->scope_distinct);
	e->max_duplicates = Max(e->max_duplicates, d->scope_max_same);
	e->last_seen = now;
	if (d->framework != PFG_FW_NONE)
		e->framework = (int8) d->framework;
	if (d->example_params && e->example_params[0] == '\0')
		strlcpy(e->example_params, d->example_params, PFG_PARAMS_LEN);
	if (d->seq_id != 0)
		e->seq_id = d->seq_id;
	if (d->nseq > 0)
	{
		e->nseq = Min(d->nseq, PFG_SEQ_MAX);
		memcpy(e->seq, d->seq, sizeof(uint64) * e->nseq);
	}
	if ((key->kind == PFG_FIND_NPLUSONE || key->kind == PFG_FIND_SEQUENCE) &&
		(e->fix_state == PFG_FIX_NONE ||
		 (e->fix_state == PFG_FIX_CLAIMED &&
		  now - e->fix_claimed > (TimestampTz) PFG_FIX_CLAIM_SECS * USECS_PER_SEC)))
	{
		e->fix_state = PFG_FIX_CLAIMED;
		e->fix_claimed = now;
		claim = true;
	}
	SpinLockRelease(mutex);
	LWLockRelease(lock);
	return claim;
}

/*
 * pfg_store_set_finding_fix
 *		Store the fix derived for a finding (after pfg_store_record_finding
 *		returned true).  Nothing happens when the finding was evicted or
 *		reset meanwhile.  Only copies under the locks.
 */
void
pfg_store_set_finding_fix(const pfgFindingKey *key, const pfgFix *fix)
{
	pfgTable   *t = &pfg_tables[PFG_TAB_FINDING];
	uint32		hash;
	LWLock	   *lock;
	pfgFindingEntry *e;

	if (!pfg_shared)
		return;
	hash = pfg_table_hash(key, sizeof(*key));
	lock = pfg_table_lock(t, hash);
	LWLockAcquire(lock, LW_SHARED);
	e = pfg_table_lookup(t, key, hash);
	if (e != NULL)
	{
		SpinLockAcquire(pfg_table_mutex(e));
		memcpy(&e->fix, fix, sizeof(pfgFix));
		e->fix_state = PFG_FIX_DONE;
		SpinLockRelease(pfg_table_mutex(e));
	}
	LWLockRelease(lock);
}

/*
 * pfg_store_record_request
 *		Account one finished request scope to its route.
 */
void
pfg_store_record_request(const pfgRequestKey *key, const char *route,
						 const pfgRequestDelta *d)
{
	pfgTable   *t = &pfg_tables[PFG_TAB_REQUEST];
	pfgRequestEntry *e;
	LWLock	   *lock;
	bool		created;
	slock_t    *mutex;

	if (!pfg_shared)
		return;
	e = pfg_table_upsert(t, key, &lock, &created);
	if (e == NULL)
		return;
	if (created)
		strlcpy(e->route, route ? route : "", PFG_ROUTE_LEN);
	mutex = pfg_table_mutex(e);
	SpinLockAcquire(mutex);
	e->requests++;
	e->queries += d->queries;
	e->max_queries = Max(e->max_queries, d->queries);
	e->total_ms += d->total_ms;
	e->max_ms = Max(e->max_ms, d->total_ms);
	if (d->had_n_plus_one)
		e->n_plus_one_requests++;
	if (d->had_duplicate)
		e->duplicate_requests++;
	if (d->had_write_loop)
		e->write_loop_requests++;
	e->last_seen = GetCurrentStatementStartTimestamp();
	SpinLockRelease(mutex);
	LWLockRelease(lock);
}

/*
 * pfg_store_record_error
 *		Count a failed statement.  Called from emit_log_hook, in the middle of
 *		error reporting: it never waits for a lock (if the partition is busy
 *		the event is counted as dropped) and never raises an error.  Unless
 *		perfguard.capture_parameters is on, the values the message quotes
 *		are masked first (pfg_mask_error_message: no allocation).
 */
void
pfg_store_record_error(const pfgErrorKey *key, const char *message)
{
	pfgTable   *t = &pfg_tables[PFG_TAB_ERROR];
	uint32		hash;
	LWLock	   *lock;
	pfgErrorEntry *e;
	TimestampTz now = GetCurrentTimestamp();
	char		masked[PFG_ERRMSG_LEN];
	int			len;

	if (!pfg_shared)
		return;
	/* values in the message are parameter values too (text_mask.c) */
	if (message && !pfg_capture_parameters)
		message = pfg_mask_error_message(message, masked, sizeof(masked));
	len = message ? strlen(message) : 0;
	if (len >= PFG_ERRMSG_LEN)
		len = pg_mbcliplen(message, len, PFG_ERRMSG_LEN - 1);
	hash = pfg_table_hash(key, sizeof(*key));
	lock = pfg_table_lock(t, hash);

	if (!LWLockConditionalAcquire(lock, LW_SHARED))
	{
		pg_atomic_fetch_add_u64(&pfg_shared->dropped_events, 1);
		return;
	}
	e = pfg_table_lookup(t, key, hash);
	if (e == NULL)
	{
		LWLockRelease(lock);
		if (!LWLockConditionalAcquire(lock, LW_EXCLUSIVE))
		{
			pg_atomic_fetch_add_u64(&pfg_shared->dropped_events, 1);
			return;
		}
		e = pfg_table_lookup(t, key, hash);
		if (e == NULL)
		{
			e = pfg_table_insert(t, key, hash);
			if (e == NULL)
			{
				LWLockRelease(lock);
				return;
			}
			e->first_seen = now;
		}
	}
	SpinLockAcquire(pfg_table_mutex(e));
	e->count++;
	e->last_seen = now;
	memcpy(e->message, message ? message : "", len);
	e->message[len] = '\0';
	SpinLockRelease(pfg_table_mutex(e));
	LWLockRelease(lock);
}

/*
 * pfg_store_add_ignore
 *		Add (or update the reason of) a suppression rule.  Rules are never
 *		evicted: returns false when the table is full.
 */
bool
pfg_store_add_ignore(const pfgIgnoreKey *key, const char *route,
					 const char *reason)
{
	pfgTable   *t = &pfg_tables[PFG_TAB_IGNORE];
	uint32		hash = pfg_table_hash(key, sizeof(*key));
	LWLock	   *lock = pfg_table_lock(t, hash);
	pfgIgnoreEntry *e;
	bool		ok = true;

	LWLockAcquire(lock, LW_EXCLUSIVE);
	e = pfg_table_lookup(t, key, hash);
	if (e == NULL)
	{
		if (!pfg_table_has_room(t, hash))
			ok = false;
		else
			e = pfg_table_insert(t, key, hash);
	}
	if (e)
	{
		strlcpy(e->route, route ? route : "", PFG_ROUTE_LEN);
		strlcpy(e->reason, reason ? reason : "", PFG_REASON_LEN);
		e->created = GetCurrentTimestamp();
		e->created_by = GetUserId();
	}
	LWLockRelease(lock);
	return ok;
}

/*
 * pfg_store_remove_ignore
 *		Remove a rule; false when there was none.
 */
bool
pfg_store_remove_ignore(const pfgIgnoreKey *key)
{
	pfgTable   *t = &pfg_tables[PFG_TAB_IGNORE];
	uint32		hash = pfg_table_hash(key, sizeof(*key));
	LWLock	   *lock = pfg_table_lock(t, hash);
	bool		found;

	LWLockAcquire(lock, LW_EXCLUSIVE);
	found = pfg_table_remove(t, key, hash);
	LWLockRelease(lock);
	return found;
}

static bool
ignore_probe(const pfgIgnoreKey *key)
{
	pfgTable   *t = &pfg_tables[PFG_TAB_IGNORE];
	uint32		hash = pfg_table_hash(key, sizeof(*key));
	LWLock	   *lock = pfg_table_lock(t, hash);
	bool		found;

	if (pfg_table_part_empty(t, hash))
		return false;
	LWLockAcquire(lock, LW_SHARED);
	found = pfg_table_lookup(t, key, hash) != NULL;
	LWLockRelease(lock);
	return found;
}

/*
 * pfg_store_is_ignored
 *		Is a finding on this fingerprint, this route, or this fingerprint on
 *		this route suppressed?  Called when a detector fires, not per
 *		statement.
 */
bool
pfg_store_is_ignored(uint64 queryid, uint32 route_hash)
{
	pfgIgnoreKey key;

	/* no rule at all, the common case: a hint read without a lock */
	if (!pfg_shared || pfg_table_count(&pfg_tables[PFG_TAB_IGNORE]) == 0)
		return false;
	memset(&key, 0, sizeof(key));
	key.kind = PFG_IGNORE_QUERYID;
	key.queryid = queryid;
	if (ignore_probe(&key))
		return true;
	memset(&key, 0, sizeof(key));
	key.kind = PFG_IGNORE_ROUTE;
	key.route_hash = route_hash;
	if (ignore_probe(&key))
		return true;
	memset(&key, 0, sizeof(key));
	key.kind = PFG_IGNORE_QUERYID_ROUTE;
	key.queryid = queryid;
	key.route_hash = route_hash;
	return ignore_probe(&key);
}

void
pfg_store_foreach_ignore(pfg_entry_cb cb, void *arg)
{
	pfg_table_foreach(&pfg_tables[PFG_TAB_IGNORE], cb, arg);
}

void
pfg_store_foreach_error(pfg_entry_cb cb, void *arg)
{
	pfg_table_foreach(&pfg_tables[PFG_TAB_ERROR], cb, arg);
}

void
pfg_store_foreach_statement(pfg_entry_cb cb, void *arg)
{
	pfg_pending_harvest();
	pfg_table_foreach(&pfg_tables[PFG_TAB_STMT], cb, arg);
}

/*
 * pfg_store_harvest
 *		Add every backend's pending statement counters to the table: called
 *		before the views read it.
 */
void
pfg_store_harvest(void)
{
	if (pfg_shared)
		pfg_pending_harvest();
}

void
pfg_store_foreach_finding(pfg_entry_cb cb, void *arg)
{
	pfg_table_foreach(&pfg_tables[PFG_TAB_FINDING], cb, arg);
}

void
pfg_store_foreach_request(pfg_entry_cb cb, void *arg)
{
	pfg_table_foreach(&pfg_tables[PFG_TAB_REQUEST], cb, arg);
}

/*
 * pfg_store_get_query
 *		A palloc'd copy of a statement's normalised text, or NULL.
 */
char *
pfg_store_get_query(Oid userid, Oid dbid, uint64 queryid, bool toplevel)
{
	pfgTable   *t = &pfg_tables[PFG_TAB_STMT];
	pfgStmtKey	key;
	uint32		hash;
	LWLock	   *lock;
	pfgStmtEntry *e;
	char		buf[PFG_QUERY_LEN];

	if (!pfg_shared || queryid == 0)
		return NULL;
	memset(&key, 0, sizeof(key));
	key.userid = userid;
	key.dbid = dbid;
	key.queryid = queryid;
	key.toplevel = toplevel;
	hash = pfg_table_hash(&key, sizeof(key));
	lock = pfg_table_lock(t, hash);
	buf[0] = '\0';
	LWLockAcquire(lock, LW_SHARED);
	e = pfg_table_lookup(t, &key, hash);
	if (e)
	{
		SpinLockAcquire(pfg_table_mutex(e));
		memcpy(buf, e->query, PFG_QUERY_LEN);
		SpinLockRelease(pfg_table_mutex(e));
	}
	LWLockRelease(lock);
	buf[PFG_QUERY_LEN - 1] = '\0';
	return (e && buf[0]) ? pstrdup(buf) : NULL;
}

/*
 * pfg_store_get_query_any
 *		The text of a statement run at top level, else nested (the query of a
 *		cursor, a statement in a function): the parent of an N+1 may be
 *		either.
 */
char *
pfg_store_get_query_any(Oid userid, Oid dbid, uint64 queryid)
{
	char	   *t = pfg_store_get_query(userid, dbid, queryid, true);

	return t ? t : pfg_store_get_query(userid, dbid, queryid, false);
}

/*
 * pfg_store_get_statement
 *		Copy a statement's entry (counters and text) into *out; false when
 *		there is none.  Copied under the entry's spinlock.
 */
bool
pfg_store_get_statement(const pfgStmtKey *key, pfgStmtEntry *out)
{
	pfgTable   *t = &pfg_tables[PFG_TAB_STMT];
	uint32		hash;
	LWLock	   *lock;
	pfgStmtEntry *e;

	if (!pfg_shared || key->queryid == 0)
		return false;
	pfg_pending_harvest();
	hash = pfg_table_hash(key, sizeof(*key));
	lock = pfg_table_lock(t, hash);
	LWLockAcquire(lock, LW_SHARED);
	e = pfg_table_lookup(t, key, hash);
	if (e)
	{
		SpinLockAcquire(pfg_table_mutex(e));
		memcpy(out, e, sizeof(pfgStmtEntry));
		SpinLockRelease(pfg_table_mutex(e));
	}
	LWLockRelease(lock);
	if (e)
		out->query[PFG_QUERY_LEN - 1] = '\0';
	return e != NULL;
}

void
pfg_store_count_dropped_event(void)
{
	if (pfg_shared)
		pg_atomic_fetch_add_u64(&pfg_shared->dropped_events, 1);
}

/*
 * pfg_store_reset
 *		Clear every table (the plan tables and the index evidence too) and
 *		the drop counters.
 *		Suppression rules and remembered advice are kept.
 */
void
pfg_store_reset(void)
{
	int			i;

	pfg_plans_reset();
	pfg_cache_reset();
	pfg_requests_reset();
	pfg_evidence_reset();
	pfg_pending_reset();

	/* suppression rules are configuration, not statistics: kept */
	for (i = 0; i < PFG_NTABLES; i++)
		if (i != PFG_TAB_IGNORE)
			pfg_table_reset(&pfg_tables[i]);
	pg_atomic_write_u64(&pfg_shared->dropped_entries, 0);
	pg_atomic_write_u64(&pfg_shared->dropped_events, 0);
	SpinLockAcquire(&pfg_shared->mutex);
	pfg_shared->stats_reset = GetCurrentTimestamp();
	SpinLockRelease(&pfg_shared->mutex);
}

void
pfg_store_info(TimestampTz *stats_reset, int64 *entries, int64 *max_entries,
			   int64 *dropped_entries, int64 *dropped_events,
			   int64 *findings, int64 *requests)
{
	SpinLockAcquire(&pfg_shared->mutex);
	*stats_reset = pfg_shared->stats_reset;
	SpinLockRelease(&pfg_shared->mutex);
	*entries = pfg_table_count(&pfg_tables[PFG_TAB_STMT]);
	*max_entries = pfg_max_statements;
	*dropped_entries = pg_atomic_read_u64(&pfg_shared->dropped_entries);
	*dropped_events = pg_atomic_read_u64(&pfg_shared->dropped_events);
	*findings = pfg_table_count(&pfg_tables[PFG_TAB_FINDING]);
	*requests = pfg_table_count(&pfg_tables[PFG_TAB_REQUEST]);
}


/*
 * pfg_store_stats_reset
 *		When the statistics were last reset (or first created).
 */
TimestampTz
pfg_store_stats_reset(void)
{
	TimestampTz result;

	SpinLockAcquire(&pfg_shared->mutex);
	result = pfg_shared->stats_reset;
	SpinLockRelease(&pfg_shared->mutex);
	return result;
}

/*
 * pfg_route_hash
 *		The hash of a route label in the keys of findings, requests and
 *		suppression rules.
 */
uint32
pfg_route_hash(const char *route)
{
	return hash_bytes((const unsigned char *) route, strlen(route));
}

/*---- persistence ----*/

typedef struct pfgFileHeader
{
	pfgFileStamp stamp;			/* must be first */
	uint32		ntables;
	TimestampTz stats_reset;
	uint64		dropped_entries;
	uint64		dropped_events;
} pfgFileHeader;

typedef struct pfgFileTable
{
	uint32		entrysize;
	uint32		count;
} pfgFileTable;

/*
 * store_shmem_shutdown
 *		on_shmem_exit callback of the postmaster: write the saved files,
 *		unless after a crash, before anything was set up, or with
 *		perfguard.save off.
 */
static void
store_shmem_shutdown(int code, Datum arg)
{
	if (code || !pfg_shared || !pfg_save)
		return;
	store_dump();
	pfg_advice_dump();
	pfg_cache_dump();
}

typedef struct pfgDumpCtx
{
	FILE	   *file;
	Size		entrysize;
	uint32		count;
	bool		failed;
} pfgDumpCtx;

static void
dump_entry(const void *entry, void *arg)
{
	pfgDumpCtx *ctx = (pfgDumpCtx *) arg;

	if (ctx->failed)
		return;
	if (fwrite(entry, ctx->entrysize, 1, ctx->file) != 1)
		ctx->failed = true;
	else
		ctx->count++;
}

/*
 * store_dump
 *		Write every table to PFG_DUMP_FILE: the header, then per table its
 *		entry size, its count and its entries.  Called in the postmaster at
 *		shutdown; errors are reported at LOG.
 */
static void
store_dump(void)
{
	const char *tmpfile = PFG_DUMP_FILE ".tmp";
	FILE	   *file = pfg_persist_begin_write(tmpfile);
	pfgFileHeader hdr;
	int			i;

	if (file == NULL)
		goto error;

	memset(&hdr, 0, sizeof(hdr));
	pfg_persist_stamp(&hdr.stamp, PFG_FILE_MAGIC, PFG_FILE_FORMAT);
	hdr.ntables = PFG_NTABLES;
	hdr.stats_reset = pfg_shared->stats_reset;
	hdr.dropped_entries = pg_atomic_read_u64(&pfg_shared->dropped_entries);
	hdr.dropped_events = pg_atomic_read_u64(&pfg_shared->dropped_events);
	if (fwrite(&hdr, sizeof(hdr), 1, file) != 1)
		goto error;

	for (i = 0; i < PFG_NTABLES; i++)
	{
		pfgTable   *t = &pfg_tables[i];
		pfgFileTable th;
		pfgDumpCtx	ctx;
		long		pos = ftell(file);

		th.entrysize = t->sh->entrysize;
		th.count = 0;
		if (fwrite(&th, sizeof(th), 1, file) != 1)
			goto error;
		ctx.file = file;
		ctx.entrysize = t->sh->entrysize;
		ctx.count = 0;
		ctx.failed = false;
		pfg_table_foreach(t, dump_entry, &ctx);
		if (ctx.failed)
			goto error;
		/* patch the count in */
		th.count = ctx.count;
		if (fseek(file, pos, SEEK_SET) != 0 ||
			fwrite(&th, sizeof(th), 1, file) != 1 ||
			fseek(file, 0, SEEK_END) != 0)
			goto error;
	}

	pfg_persist_end_write(file, tmpfile, PFG_DUMP_FILE, true);
	return;

error:
	pfg_persist_end_write(file, tmpfile, PFG_DUMP_FILE, false);
}

/*
 * store_load
 *		Read PFG_DUMP_FILE into the freshly created tables, then unlink it so
 *		that a crash never reloads stale data.  Anything wrong with the file
 *		gives a WARNING and leaves the store empty.
 */
static void
store_load(void)
{
	FILE	   *file = pfg_persist_begin_read(PFG_DUMP_FILE);
	pfgFileHeader hdr;
	char	   *buf = NULL;
	Size		bufsize = 0;
	int			i;
	const char *why = NULL;

	if (file == NULL)
		return;

	if (fread(&hdr, sizeof(hdr), 1, file) != 1)
		why = "file is truncated";
	else if ((why = pfg_persist_check(&hdr.stamp, PFG_FILE_MAGIC,
									  PFG_FILE_FORMAT,
									  "file is not a perfguard stats file")) == NULL &&
			 hdr.ntables != PFG_NTABLES)
		why = "file was written by an incompatible version";

	for (i = 0; i < PFG_NTABLES; i++)
		bufsize = Max(bufsize, table_entrysize(i));

	for (i = 0; why == NULL && i < PFG_NTABLES; i++)
	{
		pfgTable   *t = &pfg_tables[i];
		pfgFileTable th;
		uint32		n;

		if (fread(&th, sizeof(th), 1, file) != 1)
		{
			why = "file is truncated";
			break;
		}
		if (th.entrysize != t->sh->entrysize)
		{
			why = "file was written by an incompatible version";
			break;
		}
		if (buf == NULL)
			buf = palloc(bufsize);
		for (n = 0; n < th.count; n++)
		{
			uint32		hash;

			if (fread(buf, th.entrysize, 1, file) != 1)
			{
				why = "file is truncated";
				break;
			}
			hash = pfg_table_hash(buf, t->sh->keysize);
			if (pfg_table_lookup(t, buf, hash) == NULL)
			{
				void	   *e = pfg_table_insert(t, buf, hash);

				if (e)
					memcpy(e, buf, th.entrysize);
			}
		}
	}

	if (why == NULL)
		why = pfg_persist_check_end(file);

	if (why == NULL)
	{
		pfg_shared->stats_reset = hdr.stats_reset;
		pg_atomic_write_u64(&pfg_shared->dropped_entries, hdr.dropped_entries);
		pg_atomic_write_u64(&pfg_shared->dropped_events, hdr.dropped_events);
	}
	else
	{
		for (i = 0; i < PFG_NTABLES; i++)
			pfg_table_clear(&pfg_tables[i]);
	}

	if (buf)
		pfree(buf);
	pfg_persist_end_read(file, PFG_DUMP_FILE, "stats file", why);
}
