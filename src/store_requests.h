/*-------------------------------------------------------------------------
 *
 * store_requests.h
 *		The state of a request scope (what the detectors count), and the
 *		shared table of open requests that carry an id, so that every
 *		backend that runs one of their statements counts toward them.
 *
 * A request's state is one fixed-layout block: a header, then its
 * fingerprints (dense, in first-seen order), an index over them, and the
 * (fingerprint, parameter hash) pairs seen.  The same layout serves a
 * backend-local scope (scope.c, with large capacities) and an entry of the
 * shared table (small capacities), so the detectors are one piece of code.
 * Nothing in it is a pointer into backend-local memory.
 *
 * Copyright (c) 2026, perfguard developers
 *
 * IDENTIFICATION
 *	  src/store_requests.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef PFG_STORE_REQUESTS_H
#define PFG_STORE_REQUESTS_H

#include "datatype/timestamp.h"
#include "nodes/nodes.h"
#include "storage/lwlock.h"

#include "perfguard.h"
#include "table.h"

/* Repeating sequences kept per request, and the ring they are found in. */
#define PFG_MAX_SEQS		8
#define PFG_RING			16

/* Capacities of a shared request (perfguard.max_open_requests of them). */
#define PFG_SHARED_FPS		48
#define PFG_SHARED_PARAMS	512

/* One fingerprint seen in a request. */
typedef struct pfgReqFp
{
	uint64		queryid;
	CmdType		cmd;
	int32		repeats;
	int32		distinct;
	int32		max_same;		/* most executions of one parameter set */
	int32		dup_execs;		/* executions counted as duplicates */
	double		total_ms;
	double		first_ms;
	uint64		parent_queryid;
	int64		parent_rows;	/* rows the parent returned */
	bool		np_fired;
	bool		dup_fired;
	bool		wl_fired;
	bool		dirty;
	int8		ignore_state;	/* 0 unknown, 1 reported, 2 suppressed */
	bool		inband_ignored; /* a statement carried perfguard='ignore' */
	uint8		example_taken;	/* finding kinds given an example (bits) */
	bool		paged;			/* runs with an OFFSET: pagination, not a loop */
	bool		has_params;		/* its executions had parameters */
	bool		batched;		/* it loads a list of values (IN (...)) */
	/* what has already been flushed to the findings table */
	bool		fl_np;
	bool		fl_dup;
	bool		fl_wl;
	int32		fl_np_repeats;
	int32		fl_wl_repeats;
	int32		fl_dup_execs;
	double		fl_np_wasted;
	double		fl_dup_wasted;
	double		fl_wl_wasted;
	int16		seq_idx;		/* repeating sequence it belongs to, or -1 */
	void	   *hint[3];		/* where its findings were stored last (shared
								 * memory, valid in every backend) */
	uint64		last_pos;		/* ring position of its last execution */
	bool		self;			/* perfguard's own report statement */
} pfgReqFp;

/* Index slot over the fingerprints (open addressing, by generation). */
typedef struct pfgReqIdx
{
	uint32		gen;
	int32		idx;
	uint64		queryid;
} pfgReqIdx;

/* A (fingerprint, parameter hash) pair and its executions. */
typedef struct pfgReqParam
{
	uint32		gen;
	int32		count;
	uint64		queryid;
	uint64		paramhash;
} pfgReqParam;

/* A repeating sequence of fingerprints (for each book: author, publisher). */
typedef struct pfgReqSeq
{
	uint64		id;				/* hash of the members */
	int			n;
	int32		fpidx[PFG_SEQ_MAX]; /* members, first-seen first */
	bool		fl_occ;
	int32		fl_repeats;
	double		fl_wasted;
} pfgReqSeq;

/*
 * The end of one statement of a shared request, posted without the
 * partition lock into a box of the request (pfg_requests_post_end) and
 * applied by whoever takes the lock next (pfg_requests_acquire, the views,
 * the expiry), before anything reads the state.
 */
#define PFG_REQ_BOXES		8

typedef struct pfgReqEnd
{
	uint64		queryid;
	double		ms;
	int64		rows;
	TimestampTz end;			/* when it ended */
	int32		fpidx;			/* its fingerprint slot in the request */
	uint32		gen;			/* generation of the request it started in */
	int32		cmd;			/* CmdType */
	bool		paged;			/* it skipped rows with an OFFSET */
	bool		aborted;		/* it did not end: only "not running" */
} pfgReqEnd;

#define PFG_BOX_FREE		0
#define PFG_BOX_RUNNING		1
#define PFG_BOX_DONE		2

/* A box: under the entry's spinlock (the partition lock is not enough). */
typedef struct pfgReqBox
{
	uint32		gen;			/* the request generation it was taken for */
	int32		state;			/* PFG_BOX_* */
	pfgReqEnd	rec;
} pfgReqBox;

/* The state of one request; its arrays follow it (pfg_req_fps, ...). */
typedef struct pfgReqState
{
	bool		open;
	bool		explicit_scope;
	bool		tagged;
	bool		shared;			/* an entry of the shared table */
	bool		xact;			/* started by BEGIN (rule 4) */
	bool		end_after;		/* end when the current statement ends */
	bool		dirty;
	bool		too_many_done;
	bool		test;			/* test traffic (perfguard='test') */
	int8		framework;		/* pfgFramework of its tags */
	uint32		gen;			/* generation: invalidates all slots */
	int32		fps_cap;
	int32		idx_cap;		/* a power of two, >= 2 * fps_cap */
	int32		params_cap;		/* a power of two */
	int32		nfps;
	int32		nparams;
	Oid			userid;
	Oid			dbid;
	uint32		route_hash;
	uint64		keyhash;		/* hash of the scope key (tags) */
	char		label[PFG_ROUTE_LEN];
	int64		queries;
	double		total_ms;
	uint64		first_exec;		/* backend exec_seq of its first execution */
	uint64		last_select;
	uint64		last_multirow;
	int64		last_multirow_rows;
	TimestampTz last_end;		/* end of its last statement */
	int32		running;		/* statements in progress (shared) */
	int32		gap_ms;			/* request_gap of its last statement */
	int32		nseqs;
	uint32		boxes_busy;		/* boxes taken (bits), under the partition
								 * lock */
	uint64		ring[PFG_RING];
	uint64		ring_n;
	pfgReqSeq	seqs[PFG_MAX_SEQS];
	/* last: never cleared when a new request reuses the entry */
	pfgReqBox	boxes[PFG_REQ_BOXES];
} pfgReqState;

static inline pfgReqFp *
pfg_req_fps(pfgReqState *st)
{
	return (pfgReqFp *) ((char *) st + MAXALIGN(sizeof(pfgReqState)));
}

static inline pfgReqIdx *
pfg_req_idx(pfgReqState *st)
{
	return (pfgReqIdx *) ((char *) pfg_req_fps(st) +
						  MAXALIGN(sizeof(pfgReqFp) * st->fps_cap));
}

static inline pfgReqParam *
pfg_req_params(pfgReqState *st)
{
	return (pfgReqParam *) ((char *) pfg_req_idx(st) +
							MAXALIGN(sizeof(pfgReqIdx) * st->idx_cap));
}

extern Size pfg_req_state_size(int fps_cap, int params_cap);
extern void pfg_req_state_init(pfgReqState *st, int fps_cap, int params_cap);

/* Key of an open request in the shared table. */
typedef struct pfgReqKey
{
	Oid			dbid;
	uint32		pad;
	uint64		idhash;			/* hash of the trace id or request_id */
} pfgReqKey;

/* Called for each request that ends by idle time or eviction, locked. */
typedef void (*pfg_req_end_cb) (pfgReqState *st);

/* Where a backend found a request's entry last (see pfg_requests_acquire). */
typedef struct pfgReqHint
{
	pfgReqState *st;
	LWLock	   *lock;
} pfgReqHint;

extern Size pfg_requests_shmem_size(void);
extern void pfg_requests_shmem_attach(char *base, bool init,
									  LWLockPadded *locks,
									  pg_atomic_uint64 *dropped);
extern pfgReqState *pfg_requests_acquire(const pfgReqKey *key, bool create,
										 pfg_req_end_cb end_cb,
										 pfgReqHint *hint, int *box,
										 LWLock **lock_out);
extern void pfg_requests_harvest(pfgReqState *st, int *box);
extern void pfg_requests_restamp_box(pfgReqState *st, int box);

/*
 * pfg_requests_acquire_hinted
 *		pfg_requests_acquire's common case, inline: the request is where the
 *		caller found it last ("hint").  NULL (no lock held) when it is not
 *		there any more or the hint is empty; then call pfg_requests_acquire.
 */
static inline pfgReqState *
pfg_requests_acquire_hinted(const pfgReqKey *key, pfgReqHint *hint, int *box,
							LWLock **lock_out)
{
	pfgReqState *st = hint->st;

	if (st == NULL)
		return NULL;
	LWLockAcquire(hint->lock, LW_EXCLUSIVE);
	if (!pfg_table_holds((char *) st - MAXALIGN(sizeof(pfgReqKey)), key,
						 sizeof(pfgReqKey)))
	{
		LWLockRelease(hint->lock);
		return NULL;
	}
	if (st->boxes_busy != 0 || box != NULL)
		pfg_requests_harvest(st, box);
	*lock_out = hint->lock;
	return st;
}
extern void pfg_requests_expire(TimestampTz now, pfg_req_end_cb end_cb,
								pfg_req_end_cb open_cb);
typedef void (*pfg_req_read_cb) (pfgReqState *st, void *arg);
extern void pfg_requests_foreach(pfg_req_read_cb cb, void *arg);
extern void pfg_requests_reset(void);
extern int64 pfg_requests_open(void);

/*
 * pfg_req_note_end
 *		Add an execution's time and rows to its request (if the request is
 *		still the one it started in, generation "gen"): its fingerprint's
 *		time, whether it paged with an OFFSET, and the parent link (the last
 *		SELECT, the last one that returned several rows).
 */
static inline void
pfg_req_note_end(pfgReqState *st, uint32 gen, int32 fpidx, uint64 queryid,
				 CmdType cmd, double ms, int64 rows, bool paged)
{
	if (gen == 0 || gen != st->gen || !st->open)
		return;
	if (fpidx >= 0 && fpidx < st->nfps)
	{
		pfgReqFp   *fp = &pfg_req_fps(st)[fpidx];

		if (fp->repeats == 1)
			fp->first_ms = ms;
		fp->total_ms += ms;
		if (paged)
			fp->paged = true;
	}
	st->total_ms += ms;
	if (cmd == CMD_SELECT)
	{
		st->last_select = queryid;
		if (rows >= 2)
		{
			st->last_multirow = queryid;
			st->last_multirow_rows = rows;
		}
	}
}

/*
 * pfg_requests_post_end
 *		Post the end of a statement into the box it took (see
 *		store_requests.c), with no partition lock: only the entry's spinlock,
 *		for a few stores.  Dropped when the box was taken again since (its
 *		request ended and the entry was reused).  "aborted": it did not end,
 *		it only stops counting as running.
 */
static inline void
pfg_requests_post_end(pfgReqState *st, int box, uint32 gen, int32 fpidx,
					  uint64 queryid, CmdType cmd, double ms, int64 rows,
					  TimestampTz end, bool paged, bool aborted)
{
	slock_t    *mutex = pfg_table_mutex((char *) st - MAXALIGN(sizeof(pfgReqKey)));
	pfgReqBox  *b = &st->boxes[box];

	SpinLockAcquire(mutex);
	if (b->gen == gen && b->state == PFG_BOX_RUNNING)
	{
		b->rec.queryid = queryid;
		b->rec.ms = ms;
		b->rec.rows = rows;
		b->rec.end = end;
		b->rec.fpidx = fpidx;
		b->rec.gen = gen;
		b->rec.cmd = (int32) cmd;
		b->rec.paged = paged;
		b->rec.aborted = aborted;
		b->state = PFG_BOX_DONE;
	}
	SpinLockRelease(mutex);
}

#endif							/* PFG_STORE_REQUESTS_H */
