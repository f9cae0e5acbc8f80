/*-------------------------------------------------------------------------
 *
 * store_requests.c
 *		The shared table of open requests that carry an id (the trace id of
 *		a traceparent tag, else a request_id tag), and the layout of a
 *		request's state.
 *
 * Through a transaction pooler one request's statements land on several
 * backends, and one backend interleaves several requests.  A request with
 * an id is therefore kept here, keyed by (database, hash of the id), and
 * every backend that runs one of its statements updates the same state
 * (scope.c runs the detectors on it while it holds the entry's lock).  A
 * request ends when no backend ran a statement of it for its request_gap:
 * the views expire such requests before they read (pfg_requests_expire),
 * and so does the creation of a new request in the same partition; or, when
 * a partition is full, the longest idle request of it ends to make room
 * (counted in perfguard.info.dropped_events).  Ending a request hands its
 * state to the caller's callback (which flushes its findings and accounts
 * it to its route) before the entry is freed.
 *
 * Lock protocol: the table is partitioned like every store table
 * (table.c), with the tranche "perfguard_requests".  Every access to a
 * request's state, read or write, holds its partition lock exclusively:
 * the state is small and its updates are a few probes.  Nothing here can
 * ERROR while the lock is held; the callbacks must not either.
 *
 * The end of a statement does not take the partition lock: a statement
 * takes a box of its request when it starts (under the lock), and posts
 * its time, rows and end into it when it ends, under the entry's spinlock
 * only.  Whoever takes the partition lock next applies the posted ends
 * before anything reads the state (pfg_requests_acquire, the views, the
 * expiry), so a statement on another backend sees the rows of the parent
 * that ended just before it, as it would under the lock, and a statement
 * costs one partition lock round trip instead of two.  A box is told from
 * a box of an earlier request in the same entry by its generation: an end
 * posted for a request that has ended meanwhile is dropped.
 *
 * A new request's entry is not zeroed: its slots carry the generation of the
 * request that wrote them, and every request gets a generation no other had.
 *
 * Memory: perfguard.max_open_requests entries (default 1024) of about
 * 25 kB each (PFG_SHARED_FPS fingerprints and PFG_SHARED_PARAMS parameter
 * sets per request), about 26 MB at the default.
 *
 * Copyright (c) 2026, perfguard developers
 *
 * IDENTIFICATION
 *	  src/store_requests.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "port/pg_bitutils.h"
#include "storage/shmem.h"
#include "storage/spin.h"
#include "utils/timestamp.h"

#include "store_requests.h"
#include "table.h"

/* A running statement older than this no longer keeps its request open. */
#define PFG_REQ_STALE_MS	(10 * 60 * 1000)

/* The table's own shared header. */
typedef struct reqShared
{
	pg_atomic_uint32 gen;		/* generations handed to new requests */
} reqShared;

static reqShared *req_shared = NULL;
static pfgTable req_table;
static bool req_ready = false;

static Size
req_entry_size(void)
{
	return MAXALIGN(sizeof(pfgReqKey)) +
		pfg_req_state_size(PFG_SHARED_FPS, PFG_SHARED_PARAMS);
}

static inline pfgReqState *
entry_state(void *entry)
{
	return (pfgReqState *) ((char *) entry + MAXALIGN(sizeof(pfgReqKey)));
}

static inline void *
state_entry(pfgReqState *st)
{
	return (char *) st - MAXALIGN(sizeof(pfgReqKey));
}

static int
next_pow2(int n)
{
	int			p = 1;

	while (p < n)
		p <<= 1;
	return p;
}

/*
 * pfg_req_state_size
 *		Bytes of a request state with these capacities, arrays included.
 */
Size
pfg_req_state_size(int fps_cap, int params_cap)
{
	return MAXALIGN(sizeof(pfgReqState)) +
		MAXALIGN(sizeof(pfgReqFp) * fps_cap) +
		MAXALIGN(sizeof(pfgReqIdx) * next_pow2(2 * fps_cap)) +
		MAXALIGN(sizeof(pfgReqParam) * next_pow2(params_cap));
}

/*
 * pfg_req_state_init
 *		Lay out an empty state of these capacities (the caller allocated
 *		pfg_req_state_size bytes).
 */
void
pfg_req_state_init(pfgReqState *st, int fps_cap, int params_cap)
{
	/* not the boxes: a backend may be posting into one (see above) */
	memset(st, 0, offsetof(pfgReqState, boxes));
	memset(pfg_req_fps(st), 0,
		   pfg_req_state_size(fps_cap, params_cap) - MAXALIGN(sizeof(pfgReqState)));
	st->fps_cap = fps_cap;
	st->idx_cap = next_pow2(2 * fps_cap);
	st->params_cap = next_pow2(params_cap);
	st->gen = 1;
}

Size
pfg_requests_shmem_size(void)
{
	return add_size(MAXALIGN(sizeof(reqShared)),
					pfg_table_shmem_size(pfg_max_open_requests, req_entry_size()));
}

/*
 * pfg_requests_shmem_attach
 *		Set up the table at "base" (pfg_requests_shmem_size bytes).  Called
 *		by store.c with AddinShmemInitLock held.
 */
void
pfg_requests_shmem_attach(char *base, bool init, LWLockPadded *locks,
						  pg_atomic_uint64 *dropped)
{
	req_shared = (reqShared *) base;
	if (init)
		pg_atomic_init_u32(&req_shared->gen, 1);
	pfg_table_attach(&req_table, base + MAXALIGN(sizeof(reqShared)), init,
					 pfg_max_open_requests, sizeof(pfgReqKey),
					 req_entry_size(), locks, dropped);
	if (init)
	{
		int			p;
		int			i;

		/* every box free, once: they are never cleared again */
		for (p = 0; p < PFG_NPARTS; p++)
			for (i = 0; i < req_table.sh->per_part; i++)
				memset(entry_state(pfg_slot_entry(pfg_table_slot(&req_table, p, i)))->boxes,
					   0, sizeof(((pfgReqState *) NULL)->boxes));
	}
	req_ready = true;
}

/*
 * box_start
 *		Box "b" holds a statement of the request's current generation that
 *		runs now.  Caller holds the partition lock exclusively and the
 *		entry's spinlock.
 */
static inline void
box_start(pfgReqState *st, int b)
{
	st->boxes[b].gen = st->gen;
	st->boxes[b].state = PFG_BOX_RUNNING;
	st->boxes_busy |= 1U << b;
	st->running++;
}

/*
 * req_harvest
 *		Apply the ends posted into the boxes of a request and free their
 *		boxes; with "box" not NULL, also take a free box for a statement that
 *		starts now (*box = -1 when PFG_REQ_BOXES of its statements are
 *		running: that one then ends under the lock).  Caller holds the
 *		partition lock exclusively.  Under the entry's spinlock (owners post
 *		under it): straight-line stores, no call.
 */
static inline void
req_harvest(pfgReqState *st, int *box)
{
	uint32		busy = st->boxes_busy;
	slock_t    *mutex;

	if (busy == 0 && box == NULL)
		return;
	mutex = pfg_table_mutex(state_entry(st));
	SpinLockAcquire(mutex);
	while (busy != 0)
	{
		int			b = pg_rightmost_one_pos32(busy);
		pfgReqBox  *bx = &st->boxes[b];

		busy &= busy - 1;
		if (bx->state != PFG_BOX_DONE && bx->gen == st->gen)
			continue;			/* still running */
		if (bx->state == PFG_BOX_DONE && bx->gen == st->gen)
		{
			const pfgReqEnd *r = &bx->rec;

			if (st->running > 0)
				st->running--;
			if (r->end > st->last_end)
				st->last_end = r->end;
			if (!r->aborted)
				pfg_req_note_end(st, r->gen, r->fpidx, r->queryid,
								 (CmdType) r->cmd, r->ms, r->rows, r->paged);
			bx->state = PFG_BOX_FREE;
		}
		st->boxes_busy &= ~(1U << b);
	}
	if (box != NULL)
	{
		uint32		avail = ~st->boxes_busy & ((1U << PFG_REQ_BOXES) - 1);

		if (avail == 0)
			*box = -1;
		else
		{
			*box = pg_rightmost_one_pos32(avail);
			box_start(st, *box);
		}
	}
	SpinLockRelease(mutex);
}

/*
 * pfg_requests_harvest
 *		req_harvest, for pfg_requests_acquire_hinted.
 */
void
pfg_requests_harvest(pfgReqState *st, int *box)
{
	req_harvest(st, box);
}

/*
 * pfg_requests_restamp_box
 *		The request was (re)started after its statement took box "box"
 *		(state_begin gives it a new generation and no running statement):
 *		the box belongs to the new generation, and counts as running.
 *		Caller holds the partition lock exclusively.
 */
void
pfg_requests_restamp_box(pfgReqState *st, int box)
{
	slock_t    *mutex = pfg_table_mutex(state_entry(st));

	SpinLockAcquire(mutex);
	box_start(st, box);
	SpinLockRelease(mutex);
}

/*
 * req_idle
 *		Has this request seen no statement for its request_gap (or, with a
 *		statement still marked running, for PFG_REQ_STALE_MS)?
 */
static bool
req_idle(pfgReqState *st, TimestampTz now)
{
	int64		limit = (int64) (st->running > 0 ? Max(st->gap_ms, PFG_REQ_STALE_MS) :
								 st->gap_ms) * 1000;

	return now - st->last_end > limit;
}

typedef struct expireCtx
{
	TimestampTz now;
	pfg_req_end_cb end_cb;
	pfg_req_end_cb open_cb;		/* for those that stay open, or NULL */
	void	   *oldest;			/* longest idle entry, for eviction */
} expireCtx;

static bool
expire_visit(void *entry, void *arg)
{
	expireCtx  *ctx = (expireCtx *) arg;
	pfgReqState *st = entry_state(entry);

	req_harvest(st, NULL);
	if (ctx->end_cb != NULL && req_idle(st, ctx->now))
	{
		ctx->end_cb(st);
		return true;
	}
	if (ctx->open_cb)
		ctx->open_cb(st);
	if (ctx->oldest == NULL ||
		st->last_end < entry_state(ctx->oldest)->last_end)
		ctx->oldest = entry;
	return false;
}

static bool
evict_visit(void *entry, void *arg)
{
	expireCtx  *ctx = (expireCtx *) arg;

	if (entry != ctx->oldest)
		return false;
	ctx->end_cb(entry_state(entry));
	pg_atomic_fetch_add_u64(req_table.dropped, 1);
	return true;
}

/*
 * req_create
 *		Create the entry of request "key" (absent), its partition lock held
 *		exclusively: the partition's idle requests end first, and when the
 *		partition is still full its longest idle request ends (end_cb) to
 *		make room.  NULL when there is no room.
 */
static pg_noinline void *
req_create(const pfgReqKey *key, uint32 hash, pfg_req_end_cb end_cb)
{
	expireCtx	ctx;
	void	   *entry;

	ctx.now = GetCurrentTimestamp();
	ctx.end_cb = end_cb;
	ctx.open_cb = NULL;
	ctx.oldest = NULL;
	if (!pfg_table_has_room(&req_table, hash))
	{
		pfg_table_scan(&req_table, pfg_table_part(hash), expire_visit, &ctx);
		if (!pfg_table_has_room(&req_table, hash) && ctx.oldest)
			pfg_table_scan(&req_table, pfg_table_part(hash), evict_visit, &ctx);
	}

	/*
	 * Not zeroed (some 25 kB): the header is, and the slots of the arrays are
	 * told from the last request's by a generation no other request of the
	 * table ever had (handed out two apart: state_begin adds one).  The boxes
	 * are never cleared (a backend may be posting into one).
	 */
	entry = pfg_table_insert_raw(&req_table, key, hash);
	if (entry)
	{
		pfgReqState *st = entry_state(entry);
		uint32		gen = pg_atomic_fetch_add_u32(&req_shared->gen, 2);

		if (gen == 0 || gen == PG_UINT32_MAX)
		{
			/* wrapped around: clear every slot of this one once */
			pfg_req_state_init(st, PFG_SHARED_FPS, PFG_SHARED_PARAMS);
			gen = pg_atomic_fetch_add_u32(&req_shared->gen, 2);
		}
		memset(st, 0, offsetof(pfgReqState, boxes));
		st->fps_cap = PFG_SHARED_FPS;
		st->idx_cap = next_pow2(2 * PFG_SHARED_FPS);
		st->params_cap = next_pow2(PFG_SHARED_PARAMS);
		st->gen = gen;
		st->shared = true;
		st->last_end = ctx.now;
	}
	return entry;
}

/*
 * pfg_requests_acquire
 *		The state of the open request "key", with its partition lock held
 *		exclusively (*lock_out, for the caller to release), and the ends
 *		posted into it applied.  When it is not open and "create" is set, it
 *		is created empty (req_create).  NULL (no lock held) when it is not
 *		open and not created.  "hint", when not NULL, is where the caller
 *		found this request last (or zeroes): checked first, and set.  "box",
 *		when not NULL, gets a box for a statement that starts now
 *		(req_harvest), counted as running until its end is applied.
 */
pfgReqState *
pfg_requests_acquire(const pfgReqKey *key, bool create,
					 pfg_req_end_cb end_cb, pfgReqHint *hint, int *box,
					 LWLock **lock_out)
{
	uint32		hash;
	LWLock	   *lock;
	void	   *entry;
	pfgReqState *st;

	if (!req_ready)
		return NULL;
	if (hint && hint->st)
	{
		/* where it was: the key is compared under the lock */
		lock = hint->lock;
		entry = state_entry(hint->st);
		LWLockAcquire(lock, LW_EXCLUSIVE);
		if (pfg_table_holds(entry, key, sizeof(pfgReqKey)))
		{
			req_harvest(hint->st, box);
			*lock_out = lock;
			return hint->st;
		}
		LWLockRelease(lock);
	}
	hash = pfg_table_hash(key, sizeof(*key));
	lock = pfg_table_lock(&req_table, hash);
	LWLockAcquire(lock, LW_EXCLUSIVE);
	entry = pfg_table_lookup(&req_table, key, hash);
	if (entry == NULL && create)
		entry = req_create(key, hash, end_cb);
	if (entry == NULL)
	{
		LWLockRelease(lock);
		return NULL;
	}
	st = entry_state(entry);
	req_harvest(st, box);
	if (hint)
	{
		hint->st = st;
		hint->lock = lock;
	}
	*lock_out = lock;
	return st;
}

/*
 * req_scan_all
 *		Visit every open request, partition by partition, each partition's
 *		lock held exclusively while its entries are visited (empty
 *		partitions skipped without it).
 */
static void
req_scan_all(pfg_visit_cb visit, void *arg)
{
	int			p;

	for (p = 0; p < PFG_NPARTS; p++)
	{
		if (req_table.sh->parts[p].nused == 0)
			continue;
		LWLockAcquire(&req_table.locks[p].lock, LW_EXCLUSIVE);
		pfg_table_scan(&req_table, p, visit, arg);
		LWLockRelease(&req_table.locks[p].lock);
	}
}

/*
 * pfg_requests_expire
 *		End every open request that has been idle for its request_gap,
 *		partition by partition (none when end_cb is NULL), and call open_cb
 *		(when not NULL) on the others.  Called by the views before they read, so that a request that
 *		ended shows without further traffic, and what the open ones found so
 *		far too.
 */
void
pfg_requests_expire(TimestampTz now, pfg_req_end_cb end_cb,
					pfg_req_end_cb open_cb)
{
	expireCtx	ctx;

	if (!req_ready)
		return;
	ctx.now = now;
	ctx.end_cb = end_cb;
	ctx.open_cb = open_cb;
	ctx.oldest = NULL;			/* unused here: nothing is evicted */
	req_scan_all(expire_visit, &ctx);
}

typedef struct readCtx
{
	pfg_req_read_cb cb;
	void	   *arg;
} readCtx;

static bool
read_visit(void *entry, void *arg)
{
	readCtx    *ctx = (readCtx *) arg;

	req_harvest(entry_state(entry), NULL);
	ctx->cb(entry_state(entry), ctx->arg);
	return false;
}

/*
 * pfg_requests_foreach
 *		Call cb on every open request, with its partition lock held (it must
 *		only read and copy).
 */
void
pfg_requests_foreach(pfg_req_read_cb cb, void *arg)
{
	readCtx		ctx;

	if (!req_ready)
		return;
	ctx.cb = cb;
	ctx.arg = arg;
	req_scan_all(read_visit, &ctx);
}

/*
 * pfg_requests_reset
 *		Forget every open request (perfguard.reset).
 */
void
pfg_requests_reset(void)
{
	if (req_ready)
		pfg_table_reset(&req_table);
}

/*
 * pfg_requests_open
 *		Requests open right now.
 */
int64
pfg_requests_open(void)
{
	return req_ready ? pfg_table_count(&req_table) : 0;
}
