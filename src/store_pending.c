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
 * following ones to the box of that statement (pfg_pending_add): a
 * pfgStmtDelta of them (calls, time with a Welford mean and M2 of their own,
 * rows, buffers, the N+1 and duplicate counts, the latency buckets they fell
 * in, their window).  A box is added to its entry (pending_apply: the
 * entry's partition lock in shared mode and its spinlock, and
 * pfg_store_merge, as for any update) when it is full (PFG_PENDING_CALLS
 * executions, PFG_DELTA_BUCKETS buckets, or another window), when its slot is wanted for another statement, when the backend
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

/* Executions a box holds before it is applied (and PFG_DELTA_BUCKETS). */
#define PFG_PENDING_CALLS	64

typedef struct pendingBox
{
	slock_t		mutex;
	pfgStmtKey	key;
	pfgStmtEntry *entry;		/* where the key's entry was (shared memory) */
	pfgStmtDelta d;				/* d.calls == 0: empty */
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
	b->d.calls = 0;
	b->d.nbuckets = 0;
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

	if (c->d.calls <= 0 || c->entry == NULL)
		return;
	e = pfg_table_recheck(pending_table, c->entry, &c->key, LW_SHARED, &lock);
	if (e == NULL)
		return;					/* evicted or reset since */
	SpinLockAcquire(pfg_table_mutex(e));
	pfg_store_merge(&e->counters, &c->d);
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

	if (me == NULL)
		return false;
	b = &me->boxes[slot];
	SpinLockAcquire(&b->mutex);
	if (likely(b->entry == entry && b->d.calls < PFG_PENDING_CALLS &&
			   b->key.queryid == key->queryid && b->key.userid == key->userid &&
			   b->key.dbid == key->dbid && b->key.toplevel == key->toplevel) &&
		pfg_delta_add(&b->d, st, now, bucket, window))
	{
		SpinLockRelease(&b->mutex);
		return true;
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

		if (b->d.calls == 0)	/* a hint; checked again under the lock */
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
			b->d.calls = 0;
			b->d.nbuckets = 0;
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
