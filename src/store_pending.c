/*-------------------------------------------------------------------------
 *
 * store_pending.c
 *		Statement counters a backend has not yet added to the shared
 *		statement table: one box per statement this backend runs over and
 *		over, in shared memory, so that a statement that repeats costs a
 *		spinlock and a few additions instead of a partition lock round trip.
 *
 * An ORM sends the same few statements again and again (the lookups of an
 * N+1 loop, the INSERTs of a write loop).  store.c records the first
 * execution of a statement in its entry as before and then hands the
 * following ones to the box of that statement (pfg_pending_add): calls,
 * time (a Welford mean and M2 of their own), rows, buffers, the N+1 and
 * duplicate counts, the latency buckets they fell in and their window.  A
 * box is added to its entry (pending_apply: the entry's partition lock
 * in shared mode and its spinlock, as for any update) when it is full
 * (PFG_PENDING_CALLS executions, PFG_PENDING_BUCKETS buckets, or another
 * window), when its slot is wanted for another statement, when the backend
 * exits, and before anything reads the statement table: the views call
 * pfg_pending_harvest, which empties every backend's boxes.  So a reader
 * sees every execution that ended, as before, and an entry is never more
 * than PFG_PENDING_CALLS executions per backend behind between reads.
 *
 * Lock protocol: each backend's boxes are in shared memory; a box is read
 * and written under its own spinlock only (its owner adds, anyone empties).
 * An apply takes the entry's partition lock in shared mode and the entry's
 * spinlock, and compares the entry's key under the lock (it may have been
 * evicted or reset since: the executions are then dropped, as the entry's
 * counters are).  perfguard.reset empties every box.
 *
 * Memory: PFG_PENDING_SLOTS boxes per backend (MaxBackends), about 200
 * bytes each.
 *
 * Copyright (c) 2026, perfguard developers
 *
 * IDENTIFICATION
 *	  src/store_pending.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "storage/spin.h"

#include "store_pending.h"

/* Executions and latency buckets a box holds before it is applied. */
#define PFG_PENDING_CALLS	64
#define PFG_PENDING_BUCKETS	4

typedef struct pendingBox
{
	slock_t		mutex;
	int32		calls;			/* 0: empty */
	int32		window;			/* the window of its executions */
	int32		nbuckets;
	pfgStmtKey	key;
	pfgStmtEntry *entry;		/* where the key's entry was (shared memory) */
	double		total_ms;
	double		min_ms;
	double		max_ms;
	double		mean_ms;
	double		m2_ms;
	int64		rows;
	int64		blks_hit;
	int64		blks_read;
	int64		temp_written;
	int64		duplicate_calls;
	int64		n_plus_one_calls;
	TimestampTz last_seen;
	int16		bucket[PFG_PENDING_BUCKETS];
	int32		bucket_calls[PFG_PENDING_BUCKETS];
} pendingBox;

/* One backend's boxes, and whether any of them may hold executions. */
typedef struct pendingBackend
{
	pg_atomic_uint32 used;		/* a hint for harvesters: boxes were filled */
	pendingBox	boxes[PFG_PENDING_SLOTS];
} pendingBackend;

static pendingBackend *pending_all = NULL;
static int	pending_nbackends = 0;
static pfgTable *pending_table = NULL;
static pendingBackend *pending_mine = NULL;
static bool pending_exit_registered = false;

static void pending_atexit(int code, Datum arg);
static void pending_spill(pendingBox *b);

Size
pfg_pending_shmem_size(void)
{
	return mul_size(MaxBackends, sizeof(pendingBackend));
}

/*
 * pfg_pending_shmem_attach
 *		Set up the boxes at "base" (pfg_pending_shmem_size bytes); "table" is
 *		the statement table they are applied to.  Called by store.c with
 *		AddinShmemInitLock held.
 */
void
pfg_pending_shmem_attach(char *base, bool init, pfgTable *table)
{
	int			i;
	int			j;

	pending_all = (pendingBackend *) base;
	pending_nbackends = MaxBackends;
	pending_table = table;
	if (!init)
		return;
	for (i = 0; i < pending_nbackends; i++)
	{
		pg_atomic_init_u32(&pending_all[i].used, 0);
		for (j = 0; j < PFG_PENDING_SLOTS; j++)
		{
			pendingBox *b = &pending_all[i].boxes[j];

			memset(b, 0, sizeof(pendingBox));
			SpinLockInit(&b->mutex);
		}
	}
}

/* This backend's boxes, or NULL (no PGPROC slot among the backends). */
static inline pendingBackend *
pending_self(void)
{
	if (likely(pending_mine != NULL))
		return pending_mine;
	if (pending_all == NULL || MyProc == NULL ||
		MyProc->pgprocno < 0 || MyProc->pgprocno >= pending_nbackends)
		return NULL;
	pending_mine = &pending_all[MyProc->pgprocno];
	if (!pending_exit_registered)
	{
		before_shmem_exit(pending_atexit, (Datum) 0);
		pending_exit_registered = true;
	}
	return pending_mine;
}

/*
 * box_take
 *		Copy a box out and empty it.  Caller holds its spinlock.
 */
static inline void
box_take(pendingBox *b, pendingBox *copy)
{
	*copy = *b;
	b->calls = 0;
	b->nbuckets = 0;
}

/*
 * pending_apply
 *		Add a box's executions to its entry (if it still holds the key).
 */
static void
pending_apply(const pendingBox *c)
{
	LWLock	   *lock;
	pfgStmtEntry *e;
	pfgCounters *k;
	double		n1,
				n2,
				delta;
	int			wslot;
	int			i;

	if (c->calls <= 0 || c->entry == NULL)
		return;
	e = pfg_table_recheck(pending_table, c->entry, &c->key, LW_SHARED, &lock);
	if (e == NULL)
		return;					/* evicted or reset since */
	wslot = c->window % PFG_WINDOWS;
	if (wslot < 0)
		wslot += PFG_WINDOWS;
	SpinLockAcquire(pfg_table_mutex(e));
	k = &e->counters;
	n1 = (double) k->calls;
	n2 = (double) c->calls;

	/* Welford: merge (n2, mean, M2) into (n1, mean, M2) */
	delta = c->mean_ms - k->mean_ms;
	k->mean_ms += delta * n2 / (n1 + n2);
	k->sum_var_ms += c->m2_ms + delta * delta * n1 * n2 / (n1 + n2);
	if (k->calls == 0 || c->min_ms < k->min_ms)
		k->min_ms = c->min_ms;
	if (c->max_ms > k->max_ms)
		k->max_ms = c->max_ms;
	k->calls += c->calls;
	k->total_ms += c->total_ms;
	k->rows += c->rows;
	k->shared_blks_hit += c->blks_hit;
	k->shared_blks_read += c->blks_read;
	k->temp_blks_written += c->temp_written;
	k->duplicate_calls += c->duplicate_calls;
	k->n_plus_one_calls += c->n_plus_one_calls;
	if (c->last_seen > k->last_seen)
		k->last_seen = c->last_seen;
	for (i = 0; i < c->nbuckets; i++)
		k->hist[c->bucket[i]] += c->bucket_calls[i];
	if (k->win[wslot].window != c->window)
	{
		k->win[wslot].window = c->window;
		k->win[wslot].calls = 0;
		k->win[wslot].total_ms = 0;
	}
	k->win[wslot].calls += c->calls;
	k->win[wslot].total_ms += c->total_ms;
	SpinLockRelease(pfg_table_mutex(e));
	pfg_table_touch(e);
	LWLockRelease(lock);
}

/*
 * pfg_pending_add
 *		Add one execution of "key" (found at "entry" by this backend) to its
 *		box in slot "slot".  False when the box collects another statement
 *		or is full: the box is then applied and emptied, and the caller
 *		records the execution in the entry itself, then calls
 *		pfg_pending_start.
 */
bool
pfg_pending_add(int slot, const pfgStmtKey *key, pfgStmtEntry *entry,
				const pfgExecStats *st, TimestampTz now, int bucket,
				int32 window)
{
	pendingBackend *me = pending_self();
	pendingBox *b;
	int			i;

	if (me == NULL)
		return false;
	b = &me->boxes[slot];
	SpinLockAcquire(&b->mutex);
	if (likely(b->entry == entry && b->calls < PFG_PENDING_CALLS &&
			   (b->calls == 0 || b->window == window) &&
			   b->key.queryid == key->queryid && b->key.userid == key->userid &&
			   b->key.dbid == key->dbid && b->key.toplevel == key->toplevel))
	{
		for (i = 0; i < b->nbuckets; i++)
			if (b->bucket[i] == bucket)
				break;
		if (i < b->nbuckets || b->nbuckets < PFG_PENDING_BUCKETS)
		{
			if (i == b->nbuckets)
			{
				b->bucket[i] = (int16) bucket;
				b->bucket_calls[i] = 0;
				b->nbuckets++;
			}
			b->bucket_calls[i]++;
			if (b->calls == 0)
			{
				b->window = window;
				b->min_ms = b->max_ms = b->mean_ms = st->ms;
				b->m2_ms = b->total_ms = 0;
				b->rows = b->blks_hit = b->blks_read = b->temp_written = 0;
				b->duplicate_calls = b->n_plus_one_calls = 0;
			}
			else
			{
				double		delta = st->ms - b->mean_ms;

				b->mean_ms += delta / (b->calls + 1);
				b->m2_ms += delta * (st->ms - b->mean_ms);
				if (st->ms < b->min_ms)
					b->min_ms = st->ms;
				if (st->ms > b->max_ms)
					b->max_ms = st->ms;
			}
			b->calls++;
			b->total_ms += st->ms;
			b->rows += st->rows;
			b->blks_hit += st->shared_blks_hit;
			b->blks_read += st->shared_blks_read;
			b->temp_written += st->temp_blks_written;
			b->duplicate_calls += st->duplicate_calls;
			b->n_plus_one_calls += st->n_plus_one_calls;
			b->last_seen = now;
			SpinLockRelease(&b->mutex);
			return true;
		}
	}
	SpinLockRelease(&b->mutex);
	pending_spill(b);
	return false;
}

/*
 * pending_spill
 *		A box cannot take the execution: apply and empty it (out of line, so
 *		that the common path needs no copy on its stack).
 */
static pg_noinline void
pending_spill(pendingBox *b)
{
	pendingBox	copy;

	SpinLockAcquire(&b->mutex);
	box_take(b, &copy);
	b->entry = NULL;
	SpinLockRelease(&b->mutex);
	pending_apply(&copy);
}

/*
 * pfg_pending_start
 *		The box of slot "slot" collects the next executions of "key", whose
 *		entry is at "entry".
 */
void
pfg_pending_start(int slot, const pfgStmtKey *key, pfgStmtEntry *entry)
{
	pendingBackend *me = pending_self();
	pendingBox *b;
	pendingBox	copy;

	if (me == NULL)
		return;
	b = &me->boxes[slot];
	SpinLockAcquire(&b->mutex);
	box_take(b, &copy);
	b->key = *key;
	b->entry = entry;
	SpinLockRelease(&b->mutex);
	pg_atomic_write_u32(&me->used, 1);
	pending_apply(&copy);
}

/*
 * harvest_backend
 *		Apply and empty one backend's boxes.
 */
static void
harvest_backend(pendingBackend *pb)
{
	int			j;

	for (j = 0; j < PFG_PENDING_SLOTS; j++)
	{
		pendingBox *b = &pb->boxes[j];
		pendingBox	copy;

		if (b->calls == 0)		/* a hint; checked again under the lock */
			continue;
		SpinLockAcquire(&b->mutex);
		box_take(b, &copy);
		SpinLockRelease(&b->mutex);
		pending_apply(&copy);
	}
}

/*
 * pfg_pending_harvest
 *		Apply every backend's boxes: called before the statement table is
 *		read.  No lock is held by the caller.
 */
void
pfg_pending_harvest(void)
{
	int			i;

	if (pending_all == NULL)
		return;
	for (i = 0; i < pending_nbackends; i++)
		if (pg_atomic_read_u32(&pending_all[i].used) != 0)
			harvest_backend(&pending_all[i]);
}

/*
 * pfg_pending_reset
 *		Empty every box without applying it (perfguard.reset).
 */
void
pfg_pending_reset(void)
{
	int			i;
	int			j;

	if (pending_all == NULL)
		return;
	for (i = 0; i < pending_nbackends; i++)
		for (j = 0; j < PFG_PENDING_SLOTS; j++)
		{
			pendingBox *b = &pending_all[i].boxes[j];

			SpinLockAcquire(&b->mutex);
			b->calls = 0;
			b->nbuckets = 0;
			b->entry = NULL;
			SpinLockRelease(&b->mutex);
		}
}

/*
 * pending_atexit
 *		A backend that exits applies its boxes (a clean shutdown saves the
 *		table after every backend has exited).  Never raises.
 */
static void
pending_atexit(int code, Datum arg)
{
	if (pending_mine != NULL)
		harvest_backend(pending_mine);
}
