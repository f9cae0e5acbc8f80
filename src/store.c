/*-------------------------------------------------------------------------
 *
 * store.c
 *		perfguard's shared memory: three partitioned hash tables (statements,
 *		scope findings, per-route request statistics), clock-sweep eviction,
 *		and the stats file written at shutdown and read at start-up.
 *
 * Table layout.  Each table is a fixed array of slots split into
 * PFG_NPARTS partitions.  A key's hash picks its partition; inside a
 * partition the slots are chained from a bucket array.  Each partition has
 * its own LWLock, its own free list and its own clock hand, so creating or
 * evicting an entry never touches another partition and never needs a global
 * lock.  Nothing is allocated after start-up: when a partition is full, the
 * clock hand sweeps that partition alone (usage counts decay by one per
 * pass, an entry whose count is zero is the victim), so the longest time any
 * lock is held is bounded by the partition size, not by the table.
 *
 * Lock protocol (cf. pg_stat_statements):
 *	- To look up an entry and update its counters: the partition LWLock in
 *	  shared mode, then the entry's spinlock around the counter updates.
 *	- To create or evict an entry: the partition LWLock in exclusive mode.
 *	  The normalised query text is built *before* the exclusive lock is taken.
 *	- To reset: every partition lock of a table in exclusive mode, one at a
 *	  time.
 *	- Readers (the views) take each partition lock in shared mode in turn and
 *	  copy each entry under its spinlock before building tuples outside the
 *	  lock.
 * While any of these locks is held, nothing here can ERROR and nothing
 * touches the catalogs.  The usage counts are hints, updated without a lock.
 *
 * Persistence: the postmaster writes PFG_DUMP_FILE at clean shutdown (when
 * perfguard.save is on), through a temporary file and durable_rename, and
 * reads it back (then unlinks it) when shared memory is created.  A missing,
 * short, foreign or corrupt file gives a WARNING and an empty store.
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
#include <unistd.h>

#include "access/xact.h"
#include "common/hashfn.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "port/atomics.h"
#include "storage/fd.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "utils/timestamp.h"

#include "perfguard.h"

#define PFG_NPARTS			16
#define PFG_NTABLES			5
#define PFG_USAGE_MAX		5
#define PFG_DUMP_FILE		"pg_stat/perfguard.stat"
#define PFG_FILE_MAGIC		0x50464731	/* "PFG1" */
#define PFG_FILE_FORMAT		2

/* Per-partition bookkeeping, in shared memory. */
typedef struct pfgPartition
{
	int32		nused;			/* slots in use */
	int32		hand;			/* clock hand, slot index in partition */
	int32		freelist;		/* first free slot, -1 if none */
	int32		pad;
} pfgPartition;

/* Header of every slot; the entry (key first) follows, MAXALIGNed. */
typedef struct pfgSlot
{
	int32		next;			/* bucket chain or free list, -1 = end */
	uint32		hash;
	uint8		inuse;
	uint8		usage;			/* clock usage count, a hint */
	slock_t		mutex;			/* protects the entry's counters */
} pfgSlot;

#define PFG_SLOT_HDR	MAXALIGN(sizeof(pfgSlot))

/* A table's shared header; buckets and slots follow it. */
typedef struct pfgTableShared
{
	int32		per_part;		/* slots per partition */
	int32		nbuckets;		/* buckets per partition, a power of two */
	Size		entrysize;
	Size		keysize;
	Size		slotsize;
	pfgPartition parts[PFG_NPARTS];
} pfgTableShared;

/* Backend-local handle on a table. */
typedef struct pfgTable
{
	pfgTableShared *sh;
	int32	   *buckets;		/* nbuckets per partition */
	char	   *slots;
	LWLockPadded *locks;		/* PFG_NPARTS locks */
	pg_atomic_uint64 *dropped;	/* counter bumped on eviction */
} pfgTable;

/* Global shared state. */
typedef struct pfgSharedState
{
	slock_t		mutex;			/* protects stats_reset */
	TimestampTz stats_reset;
	pg_atomic_uint64 dropped_entries;	/* statements evicted */
	pg_atomic_uint64 dropped_events;	/* findings/requests evicted or lost */
} pfgSharedState;

/*---- local state ----*/
static pfgSharedState *pfg_shared = NULL;
static pfgTable pfg_tables[PFG_NTABLES];

enum
{
	PFG_TAB_STMT = 0,
	PFG_TAB_FINDING = 1,
	PFG_TAB_REQUEST = 2,
	PFG_TAB_ERROR = 3,
	PFG_TAB_IGNORE = 4
};

static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

/*---- static functions ----*/
static void pfg_shmem_request(void);
static void pfg_shmem_startup(void);
static void pfg_shmem_shutdown(int code, Datum arg);
static int	table_capacity(int which);
static Size table_entrysize(int which);
static Size table_keysize(int which);
static Size table_size(int which);
static void table_attach(int which, char *base, bool init, LWLockPadded *locks);
static void table_clear_partition(pfgTable *t, int part);
static inline pfgSlot *table_slot(pfgTable *t, int part, int idx);
static inline void *slot_entry(pfgSlot *s);
static void *table_lookup(pfgTable *t, const void *key, uint32 hash);
static void *table_insert(pfgTable *t, const void *key, uint32 hash);
static void table_foreach(pfgTable *t, pfg_entry_cb cb, void *arg);
static void table_reset(pfgTable *t);
static int64 table_count(pfgTable *t);
static void store_load(void);
static void store_dump(void);

/*
 * Size of each table from perfguard.max_statements.
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

static int
table_per_part(int which)
{
	/*
	 * Round down, so that a table never holds more entries than its
	 * capacity (perfguard.info promises entries <= max_entries).
	 */
	return Max(table_capacity(which) / PFG_NPARTS, 1);
}

static int
table_nbuckets(int which)
{
	int			n = 1;

	while (n < table_per_part(which) * 2)
		n <<= 1;
	return n;
}

static Size
table_size(int which)
{
	Size		size;
	Size		slotsize = PFG_SLOT_HDR + MAXALIGN(table_entrysize(which));

	size = MAXALIGN(sizeof(pfgTableShared));
	size = add_size(size, MAXALIGN(mul_size(sizeof(int32),
											mul_size(PFG_NPARTS, table_nbuckets(which)))));
	size = add_size(size, mul_size(slotsize,
								   mul_size(PFG_NPARTS, table_per_part(which))));
	return size;
}

/*
 * pfg_memsize
 *		Shared memory needed at the current settings.
 */
static Size
pfg_memsize(void)
{
	Size		size = MAXALIGN(sizeof(pfgSharedState));
	int			i;

	for (i = 0; i < PFG_NTABLES; i++)
		size = add_size(size, table_size(i));
	return size;
}

/*
 * pfg_store_init
 *		Install the shared memory hooks.  Called from _PG_init when the library
 *		is being preloaded.
 */
void
pfg_store_init(void)
{
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = pfg_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = pfg_shmem_startup;
}

static void
pfg_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();

	RequestAddinShmemSpace(pfg_memsize());
	RequestNamedLWLockTranche("perfguard", PFG_NPARTS * PFG_NTABLES);
}

/*
 * pfg_shmem_startup
 *		Create or attach to the shared state.  In the postmaster (or a
 *		single-user backend) this also loads the stats file and registers the
 *		dump at shutdown.
 */
static void
pfg_shmem_startup(void)
{
	bool		found;
	char	   *base;
	LWLockPadded *locks;
	int			i;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();

	pfg_shared = NULL;

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);

	base = ShmemInitStruct("perfguard", pfg_memsize(), &found);
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
		table_attach(i, base, !found, locks + i * PFG_NPARTS);
		base += table_size(i);
	}

	LWLockRelease(AddinShmemInitLock);

	if (!IsUnderPostmaster)
		on_shmem_exit(pfg_shmem_shutdown, (Datum) 0);

	if (!found && !IsUnderPostmaster)
		store_load();
}

/*
 * table_attach
 *		Set up the local handle of table "which" at "base"; initialise the
 *		shared part when "init".
 */
static void
table_attach(int which, char *base, bool init, LWLockPadded *locks)
{
	pfgTable   *t = &pfg_tables[which];
	int			nb = table_nbuckets(which);

	t->sh = (pfgTableShared *) base;
	t->buckets = (int32 *) (base + MAXALIGN(sizeof(pfgTableShared)));
	t->slots = (char *) t->buckets +
		MAXALIGN(sizeof(int32) * PFG_NPARTS * nb);
	t->locks = locks;
	t->dropped = (which == PFG_TAB_STMT) ? &pfg_shared->dropped_entries :
		&pfg_shared->dropped_events;

	if (init)
	{
		int			p;

		t->sh->per_part = table_per_part(which);
		t->sh->nbuckets = nb;
		t->sh->entrysize = table_entrysize(which);
		t->sh->keysize = table_keysize(which);
		t->sh->slotsize = PFG_SLOT_HDR + MAXALIGN(t->sh->entrysize);
		for (p = 0; p < PFG_NPARTS; p++)
		{
			int			i;

			for (i = 0; i < t->sh->per_part; i++)
				SpinLockInit(&table_slot(t, p, i)->mutex);
			table_clear_partition(t, p);
		}
	}
}

/*
 * table_clear_partition
 *		Empty one partition.  Caller holds its lock exclusively (or is alone).
 */
static void
table_clear_partition(pfgTable *t, int part)
{
	int32	   *buckets = t->buckets + part * t->sh->nbuckets;
	pfgPartition *pp = &t->sh->parts[part];
	int			i;

	for (i = 0; i < t->sh->nbuckets; i++)
		buckets[i] = -1;
	for (i = 0; i < t->sh->per_part; i++)
	{
		pfgSlot    *s = table_slot(t, part, i);

		s->inuse = 0;
		s->usage = 0;
		s->next = (i + 1 < t->sh->per_part) ? i + 1 : -1;
	}
	pp->freelist = (t->sh->per_part > 0) ? 0 : -1;
	pp->nused = 0;
	pp->hand = 0;
}

static inline pfgSlot *
table_slot(pfgTable *t, int part, int idx)
{
	return (pfgSlot *) (t->slots +
						((Size) part * t->sh->per_part + idx) * t->sh->slotsize);
}

static inline void *
slot_entry(pfgSlot *s)
{
	return (char *) s + PFG_SLOT_HDR;
}

static inline pfgSlot *
entry_slot(void *entry)
{
	return (pfgSlot *) ((char *) entry - PFG_SLOT_HDR);
}

static inline int
hash_part(uint32 hash)
{
	return hash % PFG_NPARTS;
}

static inline int
hash_bucket(pfgTable *t, uint32 hash)
{
	return (hash / PFG_NPARTS) & (t->sh->nbuckets - 1);
}

/*
 * key_hash
 *		Hash of a table key (a small, zero-padded struct), word by word: a
 *		few instructions per 8 bytes instead of hash_bytes' general loop.
 */
static inline uint32
key_hash(const void *key, Size len)
{
	const char *p = (const char *) key;
	uint64		h = UINT64CONST(0x9e3779b97f4a7c15) ^ len;

	while (len >= 8)
	{
		uint64		w;

		memcpy(&w, p, 8);
		h = (h ^ w) * UINT64CONST(0xff51afd7ed558ccd);
		h ^= h >> 32;
		p += 8;
		len -= 8;
	}
	if (len > 0)
	{
		uint64		w = 0;

		memcpy(&w, p, len);
		h = (h ^ w) * UINT64CONST(0xff51afd7ed558ccd);
		h ^= h >> 32;
	}
	h *= UINT64CONST(0xc4ceb9fe1a85ec53);
	return (uint32) (h ^ (h >> 29));
}

/*
 * table_lookup
 *		Find the entry with "key".  Caller holds the partition lock (either
 *		mode).  Bumps the entry's usage count.
 */
static void *
table_lookup(pfgTable *t, const void *key, uint32 hash)
{
	int			part = hash_part(hash);
	int32		idx = t->buckets[part * t->sh->nbuckets + hash_bucket(t, hash)];

	while (idx >= 0)
	{
		pfgSlot    *s = table_slot(t, part, idx);

		if (s->hash == hash && memcmp(slot_entry(s), key, t->sh->keysize) == 0)
		{
			if (s->usage < PFG_USAGE_MAX)
				s->usage++;
			return slot_entry(s);
		}
		idx = s->next;
	}
	return NULL;
}

/*
 * table_evict
 *		Clock sweep over one partition: free the first slot whose usage count
 *		has decayed to zero.  Caller holds the partition lock exclusively.
 *		Bounded by PFG_USAGE_MAX + 1 passes over the partition.
 */
static void
table_evict(pfgTable *t, int part)
{
	pfgPartition *pp = &t->sh->parts[part];

	for (;;)
	{
		int			idx = pp->hand;
		pfgSlot    *s = table_slot(t, part, idx);

		pp->hand = (idx + 1) % t->sh->per_part;
		if (!s->inuse)
			continue;
		if (s->usage > 0)
		{
			s->usage--;
			continue;
		}
		/* unlink the victim from its bucket chain */
		{
			int32	   *link = &t->buckets[part * t->sh->nbuckets +
										   hash_bucket(t, s->hash)];

			while (*link != idx)
				link = &table_slot(t, part, *link)->next;
			*link = s->next;
		}
		s->inuse = 0;
		s->next = pp->freelist;
		pp->freelist = idx;
		pp->nused--;
		pg_atomic_fetch_add_u64(t->dropped, 1);
		return;
	}
}

/*
 * table_insert
 *		Create the entry for "key", evicting within the partition if needed.
 *		The entry is zeroed except for its key.  Caller holds the partition
 *		lock exclusively and has checked that the key is absent.
 */
static void *
table_insert(pfgTable *t, const void *key, uint32 hash)
{
	int			part = hash_part(hash);
	pfgPartition *pp = &t->sh->parts[part];
	int32	   *bucket;
	int			idx;
	pfgSlot    *s;
	void	   *entry;

	if (t->sh->per_part <= 0)
		return NULL;
	if (pp->freelist < 0)
		table_evict(t, part);
	idx = pp->freelist;
	s = table_slot(t, part, idx);
	pp->freelist = s->next;

	bucket = &t->buckets[part * t->sh->nbuckets + hash_bucket(t, hash)];
	s->hash = hash;
	s->inuse = 1;
	s->usage = 1;
	s->next = *bucket;
	*bucket = idx;
	pp->nused++;

	entry = slot_entry(s);
	memset(entry, 0, t->sh->entrysize);
	memcpy(entry, key, t->sh->keysize);
	return entry;
}

/*
 * table_foreach
 *		Call cb on a private copy of every entry, partition by partition,
 *		with the partition lock held in shared mode.  The copy is taken under
 *		the entry spinlock; cb runs while the LWLock is held, so it must only
 *		copy (no ERROR, no catalog access).
 */
static void
table_foreach(pfgTable *t, pfg_entry_cb cb, void *arg)
{
	char	   *copy = palloc(t->sh->entrysize);
	int			p;

	for (p = 0; p < PFG_NPARTS; p++)
	{
		int			i;

		LWLockAcquire(&t->locks[p].lock, LW_SHARED);
		for (i = 0; i < t->sh->per_part; i++)
		{
			pfgSlot    *s = table_slot(t, p, i);

			if (!s->inuse)
				continue;
			SpinLockAcquire(&s->mutex);
			memcpy(copy, slot_entry(s), t->sh->entrysize);
			SpinLockRelease(&s->mutex);
			cb(copy, arg);
		}
		LWLockRelease(&t->locks[p].lock);
	}
	pfree(copy);
}

static void
table_reset(pfgTable *t)
{
	int			p;

	for (p = 0; p < PFG_NPARTS; p++)
	{
		LWLockAcquire(&t->locks[p].lock, LW_EXCLUSIVE);
		table_clear_partition(t, p);
		LWLockRelease(&t->locks[p].lock);
	}
}

static int64
table_count(pfgTable *t)
{
	int64		n = 0;
	int			p;

	for (p = 0; p < PFG_NPARTS; p++)
		n += t->sh->parts[p].nused;	/* an int32 read: atomic enough */
	return n;
}

/*
 * table_upsert
 *		Find or create the entry for "key" and return it with its partition
 *		lock held (shared if it existed, exclusive if it was created;
 *		*lock_out tells which lock to release).  Returns NULL, with no lock
 *		held, when the table has no room at all.
 */
static void *
table_upsert(pfgTable *t, const void *key, LWLock **lock_out, bool *created)
{
	uint32		hash = key_hash(key, t->sh->keysize);
	LWLock	   *lock = &t->locks[hash_part(hash)].lock;
	void	   *entry;

	*created = false;
	LWLockAcquire(lock, LW_SHARED);
	entry = table_lookup(t, key, hash);
	if (entry == NULL)
	{
		LWLockRelease(lock);
		LWLockAcquire(lock, LW_EXCLUSIVE);
		entry = table_lookup(t, key, hash);
		if (entry == NULL)
		{
			entry = table_insert(t, key, hash);
			*created = (entry != NULL);
		}
		if (entry == NULL)
		{
			LWLockRelease(lock);
			return NULL;
		}
	}
	*lock_out = lock;
	return entry;
}

/*
 * pfg_hist_bucket
 *		Latency histogram bucket of "ms": 0 below 1 us, then four buckets per
 *		octave of microseconds.  A few integer instructions.
 */
int
pfg_hist_bucket(double ms)
{
	uint64		us = (ms > 0) ? (uint64) (ms * 1000.0) : 0;
	int			e;
	int			m;
	int			b;

	if (us == 0)
		return 0;
	e = 63 - __builtin_clzll(us);
	if (e >= 2)
		m = (int) ((us >> (e - 2)) & 3);
	else
		m = (int) ((us << (2 - e)) & 3);
	b = 1 + e * 4 + m;
	return Min(b, PFG_HIST_BUCKETS - 1);
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

bool
pfg_store_ready(void)
{
	return pfg_shared != NULL;
}

/*
 * pfg_store_lookup_stmt
 *		Shared-lock probe: does an entry for "key" exist?  Used to decide
 *		whether the normalised text must be built before recording.
 */
static bool
store_stmt_exists(const pfgStmtKey *key)
{
	pfgTable   *t = &pfg_tables[PFG_TAB_STMT];
	uint32		hash = key_hash(key, sizeof(*key));
	LWLock	   *lock = &t->locks[hash_part(hash)].lock;
	bool		found;

	LWLockAcquire(lock, LW_SHARED);
	found = table_lookup(t, key, hash) != NULL;
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
	char	   *volatile norm = NULL;
	int			normlen = 0;
	TimestampTz now = GetCurrentStatementStartTimestamp();
	int			bucket = pfg_hist_bucket(st->ms);
	int32		window = (int32) (now / ((int64) pfg_window * 1000));
	int			wslot = window % PFG_WINDOWS;

	if (!pfg_shared)
		return;
	if (wslot < 0)
		wslot += PFG_WINDOWS;

	/*
	 * Fast path: the entry exists (one shared-lock probe).  Otherwise build
	 * the normalised text with no lock held, then create the entry.
	 */
	hash = key_hash(key, sizeof(*key));
	lock = &t->locks[hash_part(hash)].lock;
	LWLockAcquire(lock, LW_SHARED);
	e = table_lookup(t, key, hash);
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
		e = table_upsert(t, key, &lock, &created);
		if (e == NULL)
			return;
	}
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
		volatile pfgStmtEntry *ve = e;
		slock_t    *mutex = &entry_slot(e)->mutex;
		double		delta;

		SpinLockAcquire(mutex);
		ve->counters.calls += 1;
		ve->counters.total_ms += st->ms;
		if (ve->counters.calls == 1 || st->ms < ve->counters.min_ms)
			ve->counters.min_ms = st->ms;
		if (st->ms > ve->counters.max_ms)
			ve->counters.max_ms = st->ms;
		delta = st->ms - ve->counters.mean_ms;
		ve->counters.mean_ms += delta / ve->counters.calls;
		ve->counters.sum_var_ms += delta * (st->ms - ve->counters.mean_ms);
		ve->counters.rows += st->rows;
		ve->counters.shared_blks_hit += st->shared_blks_hit;
		ve->counters.shared_blks_read += st->shared_blks_read;
		ve->counters.temp_blks_written += st->temp_blks_written;
		ve->counters.duplicate_calls += st->duplicate_calls;
		ve->counters.n_plus_one_calls += st->n_plus_one_calls;
		ve->counters.last_seen = now;
		ve->counters.hist[bucket]++;
		if (ve->counters.win[wslot].window != window)
		{
			ve->counters.win[wslot].window = window;
			ve->counters.win[wslot].calls = 0;
			ve->counters.win[wslot].total_ms = 0;
		}
		ve->counters.win[wslot].calls++;
		ve->counters.win[wslot].total_ms += st->ms;
		SpinLockRelease(mutex);
	}
	LWLockRelease(lock);

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
	e = table_upsert(t, key, &lock, &created);
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

/*
 * pfg_store_record_finding
 *		Add a delta to an N+1 / duplicate / write-loop finding.
 */
void
pfg_store_record_finding(const pfgFindingKey *key, const char *route,
						 const pfgFindingDelta *d, void **hint)
{
	pfgTable   *t = &pfg_tables[PFG_TAB_FINDING];
	pfgFindingEntry *e = NULL;
	LWLock	   *lock;
	bool		created = false;
	slock_t    *mutex;

	if (!pfg_shared)
		return;

	/*
	 * The caller's hint is where this finding was last time: a request
	 * updates the same finding on every repeat, so check that slot first
	 * (it may have been evicted or reset since: compare the key under the
	 * lock) before hashing and walking a chain.
	 */
	if (hint && *hint)
	{
		pfgSlot    *s = entry_slot(*hint);
		Size		idx = ((char *) s - t->slots) / t->sh->slotsize;

		lock = &t->locks[idx / t->sh->per_part].lock;
		LWLockAcquire(lock, LW_SHARED);
		if (s->inuse && memcmp(*hint, key, sizeof(*key)) == 0)
			e = *hint;
		else
			LWLockRelease(lock);
	}
	if (e == NULL)
	{
		e = table_upsert(t, key, &lock, &created);
		if (e == NULL)
			return;
		if (hint)
			*hint = e;
	}
	if (created)
	{
		strlcpy(e->route, route ? route : "", PFG_ROUTE_LEN);
		e->cmdtype = d->cmdtype;
	}
	mutex = &entry_slot(e)->mutex;
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
	e->last_seen = GetCurrentStatementStartTimestamp();
	if (d->example_params && e->example_params[0] == '\0')
		strlcpy(e->example_params, d->example_params, PFG_PARAMS_LEN);
	if (d->seq_id != 0)
		e->seq_id = d->seq_id;
	if (d->nseq > 0)
	{
		e->nseq = Min(d->nseq, PFG_SEQ_MAX);
		memcpy(e->seq, d->seq, sizeof(uint64) * e->nseq);
	}
	SpinLockRelease(mutex);
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
	e = table_upsert(t, key, &lock, &created);
	if (e == NULL)
		return;
	if (created)
		strlcpy(e->route, route ? route : "", PFG_ROUTE_LEN);
	mutex = &entry_slot(e)->mutex;
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
 *		the event is counted as dropped) and never raises an error.
 */
void
pfg_store_record_error(const pfgErrorKey *key, const char *message)
{
	pfgTable   *t = &pfg_tables[PFG_TAB_ERROR];
	uint32		hash;
	LWLock	   *lock;
	pfgErrorEntry *e;
	TimestampTz now = GetCurrentTimestamp();
	int			len = message ? strlen(message) : 0;

	if (!pfg_shared)
		return;
	if (len >= PFG_ERRMSG_LEN)
		len = pg_mbcliplen(message, len, PFG_ERRMSG_LEN - 1);
	hash = key_hash(key, sizeof(*key));
	lock = &t->locks[hash_part(hash)].lock;

	if (!LWLockConditionalAcquire(lock, LW_SHARED))
	{
		pg_atomic_fetch_add_u64(&pfg_shared->dropped_events, 1);
		return;
	}
	e = table_lookup(t, key, hash);
	if (e == NULL)
	{
		LWLockRelease(lock);
		if (!LWLockConditionalAcquire(lock, LW_EXCLUSIVE))
		{
			pg_atomic_fetch_add_u64(&pfg_shared->dropped_events, 1);
			return;
		}
		e = table_lookup(t, key, hash);
		if (e == NULL)
		{
			e = table_insert(t, key, hash);
			if (e == NULL)
			{
				LWLockRelease(lock);
				return;
			}
			e->first_seen = now;
		}
	}
	SpinLockAcquire(&entry_slot(e)->mutex);
	e->count++;
	e->last_seen = now;
	memcpy(e->message, message ? message : "", len);
	e->message[len] = '\0';
	SpinLockRelease(&entry_slot(e)->mutex);
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
	uint32		hash = key_hash(key, sizeof(*key));
	LWLock	   *lock = &t->locks[hash_part(hash)].lock;
	pfgIgnoreEntry *e;
	bool		ok = true;

	LWLockAcquire(lock, LW_EXCLUSIVE);
	e = table_lookup(t, key, hash);
	if (e == NULL)
	{
		if (t->sh->parts[hash_part(hash)].freelist < 0)
			ok = false;
		else
			e = table_insert(t, key, hash);
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
	uint32		hash = key_hash(key, sizeof(*key));
	int			part = hash_part(hash);
	LWLock	   *lock = &t->locks[part].lock;
	int32	   *link;
	bool		found = false;

	LWLockAcquire(lock, LW_EXCLUSIVE);
	link = &t->buckets[part * t->sh->nbuckets + hash_bucket(t, hash)];
	while (*link >= 0)
	{
		int32		idx = *link;
		pfgSlot    *s = table_slot(t, part, idx);

		if (s->hash == hash && memcmp(slot_entry(s), key, t->sh->keysize) == 0)
		{
			*link = s->next;
			s->inuse = 0;
			s->next = t->sh->parts[part].freelist;
			t->sh->parts[part].freelist = idx;
			t->sh->parts[part].nused--;
			found = true;
			break;
		}
		link = &s->next;
	}
	LWLockRelease(lock);
	return found;
}

static bool
ignore_probe(const pfgIgnoreKey *key)
{
	pfgTable   *t = &pfg_tables[PFG_TAB_IGNORE];
	uint32		hash = key_hash(key, sizeof(*key));
	LWLock	   *lock = &t->locks[hash_part(hash)].lock;
	bool		found;

	if (t->sh->parts[hash_part(hash)].nused == 0)
		return false;
	LWLockAcquire(lock, LW_SHARED);
	found = table_lookup(t, key, hash) != NULL;
	LWLockRelease(lock);
	return found;
}

/*
 * pfg_store_is_ignored
 *		Is a finding on this fingerprint or route suppressed?  Called when a
 *		detector fires, not per statement.
 */
bool
pfg_store_is_ignored(uint64 queryid, uint32 route_hash)
{
	pfgIgnoreKey key;

	if (!pfg_shared)
		return false;
	memset(&key, 0, sizeof(key));
	key.kind = PFG_IGNORE_QUERYID;
	key.queryid = queryid;
	if (ignore_probe(&key))
		return true;
	memset(&key, 0, sizeof(key));
	key.kind = PFG_IGNORE_ROUTE;
	key.route_hash = route_hash;
	return ignore_probe(&key);
}

void
pfg_store_foreach_ignore(pfg_entry_cb cb, void *arg)
{
	table_foreach(&pfg_tables[PFG_TAB_IGNORE], cb, arg);
}

void
pfg_store_foreach_error(pfg_entry_cb cb, void *arg)
{
	table_foreach(&pfg_tables[PFG_TAB_ERROR], cb, arg);
}

void
pfg_store_foreach_statement(pfg_entry_cb cb, void *arg)
{
	table_foreach(&pfg_tables[PFG_TAB_STMT], cb, arg);
}

void
pfg_store_foreach_finding(pfg_entry_cb cb, void *arg)
{
	table_foreach(&pfg_tables[PFG_TAB_FINDING], cb, arg);
}

void
pfg_store_foreach_request(pfg_entry_cb cb, void *arg)
{
	table_foreach(&pfg_tables[PFG_TAB_REQUEST], cb, arg);
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
	hash = key_hash(&key, sizeof(key));
	lock = &t->locks[hash_part(hash)].lock;
	buf[0] = '\0';
	LWLockAcquire(lock, LW_SHARED);
	e = table_lookup(t, &key, hash);
	if (e)
	{
		SpinLockAcquire(&entry_slot(e)->mutex);
		memcpy(buf, e->query, PFG_QUERY_LEN);
		SpinLockRelease(&entry_slot(e)->mutex);
	}
	LWLockRelease(lock);
	buf[PFG_QUERY_LEN - 1] = '\0';
	return (e && buf[0]) ? pstrdup(buf) : NULL;
}

void
pfg_store_count_dropped_event(void)
{
	if (pfg_shared)
		pg_atomic_fetch_add_u64(&pfg_shared->dropped_events, 1);
}

/*
 * pfg_store_reset
 *		Clear every table and the drop counters.
 */
void
pfg_store_reset(void)
{
	int			i;

	/* suppression rules are configuration, not statistics: kept */
	for (i = 0; i < PFG_NTABLES; i++)
		if (i != PFG_TAB_IGNORE)
			table_reset(&pfg_tables[i]);
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
	*entries = table_count(&pfg_tables[PFG_TAB_STMT]);
	*max_entries = pfg_max_statements;
	*dropped_entries = pg_atomic_read_u64(&pfg_shared->dropped_entries);
	*dropped_events = pg_atomic_read_u64(&pfg_shared->dropped_events);
	*findings = table_count(&pfg_tables[PFG_TAB_FINDING]);
	*requests = table_count(&pfg_tables[PFG_TAB_REQUEST]);
}

/*---- persistence ----*/

typedef struct pfgFileHeader
{
	uint32		magic;
	uint32		pg_major;
	uint32		format;
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
 * pfg_shmem_shutdown
 *		on_shmem_exit callback of the postmaster: dump the tables.
 */
static void
pfg_shmem_shutdown(int code, Datum arg)
{
	/* Not after a crash, nor when nothing was set up. */
	if (code || !pfg_shared)
		return;
	if (!pfg_save)
		return;
	store_dump();
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
 * pfg_dump_finish
 *		End the writing of a stats file (store.c's and index_advice.c's): when
 *		every write succeeded ("ok"), close "tmpfile" and durably rename it to
 *		"path"; otherwise, or if closing fails, report at LOG (errno is the
 *		failed call's) and remove the temporary file.  "file" may be NULL when
 *		it could not be opened.
 */
void
pfg_dump_finish(FILE *file, const char *tmpfile, const char *path, bool ok)
{
	if (ok)
	{
		if (FreeFile(file) == 0)
		{
			(void) durable_rename(tmpfile, path, LOG);
			return;
		}
		file = NULL;
	}
	ereport(LOG,
			(errcode_for_file_access(),
			 errmsg("perfguard: could not write file \"%s\": %m", tmpfile)));
	if (file)
		FreeFile(file);
	unlink(tmpfile);
}

/*
 * store_dump
 *		Write every table to PFG_DUMP_FILE ".tmp", then rename it into place.
 *		Called in the postmaster at shutdown; errors are reported at LOG.
 */
static void
store_dump(void)
{
	FILE	   *file;
	pfgFileHeader hdr;
	int			i;
	const char *tmpfile = PFG_DUMP_FILE ".tmp";

	file = AllocateFile(tmpfile, PG_BINARY_W);
	if (file == NULL)
		goto error;

	memset(&hdr, 0, sizeof(hdr));
	hdr.magic = PFG_FILE_MAGIC;
	hdr.pg_major = PG_VERSION_NUM / 100;
	hdr.format = PFG_FILE_FORMAT;
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
		table_foreach(t, dump_entry, &ctx);
		if (ctx.failed)
			goto error;
		/* patch the count in */
		th.count = ctx.count;
		if (fseek(file, pos, SEEK_SET) != 0 ||
			fwrite(&th, sizeof(th), 1, file) != 1 ||
			fseek(file, 0, SEEK_END) != 0)
			goto error;
	}

	pfg_dump_finish(file, tmpfile, PFG_DUMP_FILE, true);
	return;

error:
	pfg_dump_finish(file, tmpfile, PFG_DUMP_FILE, false);
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
	FILE	   *file;
	pfgFileHeader hdr;
	char	   *buf = NULL;
	int			i;
	const char *why = NULL;

	file = AllocateFile(PFG_DUMP_FILE, PG_BINARY_R);
	if (file == NULL)
	{
		if (errno != ENOENT)
			ereport(WARNING,
					(errcode_for_file_access(),
					 errmsg("perfguard: could not read file \"%s\": %m",
							PFG_DUMP_FILE)));
		return;
	}

	if (fread(&hdr, sizeof(hdr), 1, file) != 1)
		why = "file is truncated";
	else if (hdr.magic != PFG_FILE_MAGIC)
		why = "file is not a perfguard stats file";
	else if (hdr.pg_major != PG_VERSION_NUM / 100 ||
			 hdr.format != PFG_FILE_FORMAT || hdr.ntables != PFG_NTABLES)
		why = "file was written by an incompatible version";

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
			buf = palloc(Max(Max(sizeof(pfgStmtEntry), Max(sizeof(pfgErrorEntry), sizeof(pfgIgnoreEntry))),
							 Max(sizeof(pfgFindingEntry), sizeof(pfgRequestEntry))));
		for (n = 0; n < th.count; n++)
		{
			uint32		hash;

			if (fread(buf, th.entrysize, 1, file) != 1)
			{
				why = "file is truncated";
				break;
			}
			hash = key_hash(buf, t->sh->keysize);
			if (table_lookup(t, buf, hash) == NULL)
			{
				void	   *e = table_insert(t, buf, hash);

				if (e)
					memcpy(e, buf, th.entrysize);
			}
		}
	}

	if (why == NULL)
	{
		char		extra;

		if (fread(&extra, 1, 1, file) != 0)
			why = "file has trailing data";
	}

	if (why == NULL)
	{
		pfg_shared->stats_reset = hdr.stats_reset;
		pg_atomic_write_u64(&pfg_shared->dropped_entries, hdr.dropped_entries);
		pg_atomic_write_u64(&pfg_shared->dropped_events, hdr.dropped_events);
	}
	else
	{
		ereport(WARNING,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("perfguard: ignoring stats file \"%s\": %s",
						PFG_DUMP_FILE, why)));
		for (i = 0; i < PFG_NTABLES; i++)
		{
			int			p;

			for (p = 0; p < PFG_NPARTS; p++)
				table_clear_partition(&pfg_tables[i], p);
		}
	}

	if (buf)
		pfree(buf);
	FreeFile(file);
	unlink(PFG_DUMP_FILE);
}
