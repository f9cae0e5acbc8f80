/*-------------------------------------------------------------------------
 *
 * index_advice.c
 *		Missing-index advice proven with hypothetical indexes, and
 *		perfguard.advise(query) for one statement.
 *
 * Everything here runs at report time; nothing touches the hot path.  The
 * only permanent cost is a get_relation_info_hook that returns after one
 * branch unless this file has set its backend-local list of "hypothetical
 * indexes active" (hypo_active), which happens only while this file calls
 * the planner itself.
 *
 * How a candidate is built and proven (docs/index_advice.md has more):
 *	1. The normalised text of a statement (with $n placeholders) is parsed
 *	   with raw_parser, analysed with parse_analyze_varparams (which infers
 *	   the types of $n), rewritten, and planned with pg_plan_query.  The $n
 *	   stay Params, so this is the generic plan and its cost.
 *	2. The plan is walked for scans of big tables (reltuples >=
 *	   PFG_BIG_TABLE_ROWS) that filter: Seq Scans with a qual, and Index /
 *	   Bitmap Heap Scans that still have a Filter.  A scan under a Sort also
 *	   counts when the statement sorts by columns of that table.
 *	3. The scan's quals give equality columns (=, = ANY, IS NULL, boolean
 *	   columns) and range columns (<, <=, >, >=), as the column type's
 *	   default btree operator family sees them; ORDER BY gives the order
 *	   columns.  Candidates: equality columns first, then the first range
 *	   column, then the ORDER BY columns, plus the shorter variants and the
 *	   single columns.  A candidate that an existing btree index already
 *	   starts with is dropped.
 *	4. Each candidate is proven: the statement is planned again with the
 *	   candidate appended to the table's indexlist as an IndexOptInfo with
 *	   hypothetical = true and btree's cost estimator; its size comes from
 *	   the table's tuples, the key columns' average widths and the btree
 *	   fill factor (90 for leaves, 70 for inner pages).  The cheapest
 *	   candidate wins (a shorter one when it is within 1%), if it lowers the
 *	   statement's estimated total cost by at least PFG_MIN_IMPROVEMENT.
 *	5. Across statements, identical candidates are merged, and a candidate
 *	   whose columns are a leading prefix of another's is merged into that
 *	   one when the longer index, planned for the shorter one's statements,
 *	   still proves itself for each of them.
 *
 * Closed loop: every 'missing' row is remembered in a small shared table
 * (PFG_ADVICE_MAX entries, tranche "perfguard_advice") with a snapshot of
 * its statements' cumulative calls and time.  At report time, advice whose
 * index now exists (a valid btree index starting with the advised columns)
 * is listed with applied = true and the mean time per call before the
 * advice and since.  The table is saved at a clean shutdown like the
 * statistics (PFG_ADVICE_FILE).  Also report-time only.
 *
 * Errors while analysing one statement of the store (a table dropped, a
 * text that no longer parses, a truncated text) skip that statement: each
 * runs in an internal subtransaction that is always rolled back, which also
 * releases the locks that parse analysis took.
 *
 * Copyright (c) 2026, perfguard developers
 *
 * IDENTIFICATION
 *	  src/index_advice.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "access/amapi.h"
#include "access/genam.h"
#include "access/htup_details.h"
#include "access/itup.h"
#include "access/nbtree.h"
#include "access/relation.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/pg_am.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_class.h"
#include "catalog/pg_index.h"
#include "catalog/pg_type.h"
#include "commands/defrem.h"
#include "executor/executor.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "nodes/plannodes.h"
#include "optimizer/optimizer.h"
#include "optimizer/plancat.h"
#include "parser/analyze.h"
#include "parser/parser.h"
#include "parser/parsetree.h"
#include "rewrite/rewriteHandler.h"
#include "storage/bufpage.h"
#include "storage/fd.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "tcop/tcopprot.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/resowner.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"

#include "perfguard.h"

PG_FUNCTION_INFO_V1(perfguard_index_advice_missing);
PG_FUNCTION_INFO_V1(perfguard_advise);

/*---- constants ----*/

/* A table is "big" from this many rows (pg_class.reltuples) on. */
#define PFG_BIG_TABLE_ROWS		10000.0
/* A candidate must lower the estimated total cost by this fraction. */
#define PFG_MIN_IMPROVEMENT		0.30
/* Most key columns of a candidate, and columns of each kind we look at. */
#define PFG_MAX_COLS			6
/* Most candidates tried per scanned table. */
#define PFG_MAX_CANDIDATES		8
/* Fake OIDs of hypothetical indexes count down from here. */
#define PFG_HYPO_OID_BASE		((Oid) 0xFFFFFF00)
/* Closed loop: advice remembered in shared memory, and its statements. */
#define PFG_ADVICE_MAX			256
#define PFG_ADVICE_QIDS			16
#define PFG_ADVICE_FILE			"pg_stat/perfguard_advice.stat"
#define PFG_ADVICE_MAGIC		0x50464141	/* "PFAA" */
#define PFG_ADVICE_FORMAT		1

/*---- types ----*/

/* One candidate btree index; catalog facts are filled when it is built. */
typedef struct pfgCandidate
{
	Oid			relid;
	int			ncols;
	AttrNumber	attnos[PFG_MAX_COLS];
	bool		desc[PFG_MAX_COLS];
	bool		nulls_first[PFG_MAX_COLS];
	Oid			atttype[PFG_MAX_COLS];
	int32		atttypmod[PFG_MAX_COLS];
	Oid			attcoll[PFG_MAX_COLS];
	Oid			opfamily[PFG_MAX_COLS];
	Oid			opcintype[PFG_MAX_COLS];
	int32		keywidth;		/* sum of the key columns' average widths */
	BlockNumber est_pages;		/* set by the hook when planned */
} pfgCandidate;

/* A scan of a big table that filters or feeds a sort. */
typedef struct scanTarget
{
	Oid			relid;
	Index		scanrelid;
	const char *node;			/* "Seq Scan", "Index Scan", ... */
	List	   *quals;
	double		reltuples;
	double		plan_rows;
	bool		under_sort;
} scanTarget;

/* The ORDER BY of a statement when it is on columns of one table. */
typedef struct orderCols
{
	Oid			relid;
	int			n;
	AttrNumber	attnos[PFG_MAX_COLS];
	bool		desc[PFG_MAX_COLS];
	bool		nulls_first[PFG_MAX_COLS];
} orderCols;

/* The proven best candidate for one table of one statement. */
typedef struct provenIndex
{
	pfgCandidate cand;
	double		cost_before;
	double		cost_after;
	char	   *scan_desc;		/* "Seq Scan on t filters on a =, b >" */
} provenIndex;

/* A plan finding for perfguard.advise(). */
typedef struct planFinding
{
	const char *kind;
	char	   *relation;
	char	   *detail;
} planFinding;

/* What the analysis of one statement yields. */
typedef struct stmtAnalysis
{
	double		cost_before;
	List	   *proven;			/* provenIndex * */
	List	   *findings;		/* planFinding * (only when asked) */
	List	   *tried;			/* char *: tables where nothing helped */
} stmtAnalysis;

/* One statement of the store, as the missing-index report sees it. */
typedef struct stmtItem
{
	uint64		queryid;
	int64		calls;
	double		total_ms;
	char	   *query;
} stmtItem;

/* One row of the missing-index report, while merging. */
typedef struct adviceRow
{
	pfgCandidate cand;
	List	   *stmts;			/* stmtItem * served */
	List	   *before;			/* double * per statement */
	List	   *after;			/* double * per statement */
	char	   *scan_desc;
	bool		merged;			/* folded into another row */
} adviceRow;

/*
 * One remembered 'missing' advice (closed loop).  The key is (dbid, relid,
 * columns with their directions); the counters are the cumulative calls and
 * time of each statement it serves, summed over users, when the advice was
 * last computed while not applied.
 */
typedef struct pfgAdviceEntry
{
	bool		used;
	bool		applied;		/* an index with these leading columns exists */
	int16		ncols;
	int16		nq;
	Oid			dbid;
	Oid			relid;
	Oid			applied_index;
	AttrNumber	attnos[PFG_MAX_COLS];
	bool		desc[PFG_MAX_COLS];
	bool		nulls_first[PFG_MAX_COLS];
	uint64		queryids[PFG_ADVICE_QIDS];
	int64		calls[PFG_ADVICE_QIDS];
	double		total_ms[PFG_ADVICE_QIDS];
	double		est_cost_before;
	double		est_cost_after;
	double		est_improvement;
	TimestampTz advised_at;		/* when the counters were taken */
	TimestampTz applied_at;		/* when the index was first seen */
} pfgAdviceEntry;

typedef struct pfgAdviceShared
{
	LWLock	   *lock;
	pfgAdviceEntry entries[PFG_ADVICE_MAX];
} pfgAdviceShared;

typedef struct pfgAdviceFileHeader
{
	uint32		magic;
	uint32		pg_major;
	uint32		format;
	uint32		entrysize;
	uint32		count;
} pfgAdviceFileHeader;

/* Cumulative counters of one query id in this database (all users). */
typedef struct qidStat
{
	uint64		queryid;
	int64		calls;
	double		total_ms;
} qidStat;

typedef struct qidStats
{
	qidStat    *items;
	int			n;
	int			cap;
} qidStats;

/*---- static state ----*/

static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;
static pfgAdviceShared *advice_shared = NULL;

static get_relation_info_hook_type prev_get_relation_info_hook = NULL;

/* Hypothetical indexes the planner should see right now (usually none). */
static pfgCandidate *hypo_active[1];
static int	hypo_nactive = 0;

/*---- forward declarations ----*/

static void pfg_get_relation_info(PlannerInfo *root, Oid relationObjectId,
								  bool inhparent, RelOptInfo *rel);
static void advice_shmem_request(void);
static void advice_shmem_startup(void);
static void advice_shmem_shutdown(int code, Datum arg);
static void advice_dump(void);
static void advice_load(void);

/*
 * pfg_index_advice_init
 *		Install the get_relation_info_hook and the shared-memory hooks of the
 *		remembered advice (called from _PG_init when preloaded).
 */
void
pfg_index_advice_init(void)
{
	prev_get_relation_info_hook = get_relation_info_hook;
	get_relation_info_hook = pfg_get_relation_info;
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = advice_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = advice_shmem_startup;
}

/*---- remembered advice: shared memory and its file ----*/

static void
advice_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(MAXALIGN(sizeof(pfgAdviceShared)));
	RequestNamedLWLockTranche("perfguard_advice", 1);
}

/*
 * advice_shmem_startup
 *		Create or attach to the advice table; the postmaster loads the file
 *		of the last clean shutdown and arranges to write it at the next.
 */
static void
advice_shmem_startup(void)
{
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();

	advice_shared = NULL;
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	advice_shared = ShmemInitStruct("perfguard_advice",
									sizeof(pfgAdviceShared), &found);
	if (!found)
	{
		memset(advice_shared, 0, sizeof(pfgAdviceShared));
		advice_shared->lock = &(GetNamedLWLockTranche("perfguard_advice"))->lock;
	}
	LWLockRelease(AddinShmemInitLock);

	if (!IsUnderPostmaster)
		on_shmem_exit(advice_shmem_shutdown, (Datum) 0);
	if (!found && !IsUnderPostmaster)
		advice_load();
}

/*
 * advice_shmem_shutdown
 *		on_shmem_exit callback of the postmaster: write the table, unless
 *		after a crash or with perfguard.save off.
 */
static void
advice_shmem_shutdown(int code, Datum arg)
{
	if (code || !advice_shared || !pfg_save)
		return;
	advice_dump();
}

/*
 * advice_dump
 *		Write the used entries to PFG_ADVICE_FILE ".tmp" and rename it into
 *		place.  Errors are reported at LOG (the postmaster is exiting).
 */
static void
advice_dump(void)
{
	const char *tmpfile = PFG_ADVICE_FILE ".tmp";
	FILE	   *file;
	pfgAdviceFileHeader hdr;
	int			i;

	file = AllocateFile(tmpfile, PG_BINARY_W);
	if (file == NULL)
		goto error;
	memset(&hdr, 0, sizeof(hdr));
	hdr.magic = PFG_ADVICE_MAGIC;
	hdr.pg_major = PG_VERSION_NUM / 100;
	hdr.format = PFG_ADVICE_FORMAT;
	hdr.entrysize = sizeof(pfgAdviceEntry);
	for (i = 0; i < PFG_ADVICE_MAX; i++)
		if (advice_shared->entries[i].used)
			hdr.count++;
	if (fwrite(&hdr, sizeof(hdr), 1, file) != 1)
		goto error;
	for (i = 0; i < PFG_ADVICE_MAX; i++)
	{
		if (!advice_shared->entries[i].used)
			continue;
		if (fwrite(&advice_shared->entries[i], sizeof(pfgAdviceEntry), 1,
				   file) != 1)
			goto error;
	}
	pfg_dump_finish(file, tmpfile, PFG_ADVICE_FILE, true);
	return;

error:
	pfg_dump_finish(file, tmpfile, PFG_ADVICE_FILE, false);
}

/*
 * advice_load
 *		Read PFG_ADVICE_FILE into the fresh table and unlink it, so that a
 *		crash never brings back stale advice.  A bad file gives a WARNING
 *		and an empty table.
 */
static void
advice_load(void)
{
	FILE	   *file;
	pfgAdviceFileHeader hdr;
	const char *why = NULL;
	uint32		n;

	file = AllocateFile(PFG_ADVICE_FILE, PG_BINARY_R);
	if (file == NULL)
	{
		if (errno != ENOENT)
			ereport(WARNING,
					(errcode_for_file_access(),
					 errmsg("perfguard: could not read file \"%s\": %m",
							PFG_ADVICE_FILE)));
		return;
	}
	if (fread(&hdr, sizeof(hdr), 1, file) != 1)
		why = "file is truncated";
	else if (hdr.magic != PFG_ADVICE_MAGIC)
		why = "file is not a perfguard advice file";
	else if (hdr.pg_major != PG_VERSION_NUM / 100 ||
			 hdr.format != PFG_ADVICE_FORMAT ||
			 hdr.entrysize != sizeof(pfgAdviceEntry))
		why = "file was written by an incompatible version";
	else if (hdr.count > PFG_ADVICE_MAX)
		why = "file has too many entries";
	for (n = 0; why == NULL && n < hdr.count; n++)
	{
		pfgAdviceEntry *e = &advice_shared->entries[n];

		if (fread(e, sizeof(pfgAdviceEntry), 1, file) != 1)
			why = "file is truncated";
		else if (!e->used || e->ncols < 1 || e->ncols > PFG_MAX_COLS ||
				 e->nq < 0 || e->nq > PFG_ADVICE_QIDS)
			why = "file has an invalid entry";
	}
	if (why == NULL)
	{
		char		extra;

		if (fread(&extra, 1, 1, file) != 0)
			why = "file has trailing data";
	}
	if (why != NULL)
	{
		ereport(WARNING,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("perfguard: ignoring advice file \"%s\": %s",
						PFG_ADVICE_FILE, why)));
		memset(advice_shared->entries, 0, sizeof(advice_shared->entries));
	}
	FreeFile(file);
	unlink(PFG_ADVICE_FILE);
}

/*---- hypothetical indexes ----*/

/*
 * estimate_btree_size
 *		Pages and height of a freshly built btree over "tuples" entries of
 *		"keywidth" bytes of key: leaves filled to BTREE_DEFAULT_FILLFACTOR,
 *		inner pages to BTREE_NONLEAF_FILLFACTOR, plus the meta page.  No
 *		deduplication is assumed (an over-estimate for repetitive keys).
 */
static void
estimate_btree_size(double tuples, int32 keywidth, BlockNumber *pages,
					int *height)
{
	double		itemsz = MAXALIGN(sizeof(IndexTupleData) + Max(keywidth, 1)) +
		sizeof(ItemIdData);
	double		usable = BLCKSZ - SizeOfPageHeaderData -
		MAXALIGN(sizeof(BTPageOpaqueData));
	double		per_leaf = Max(floor(usable * BTREE_DEFAULT_FILLFACTOR / 100.0 / itemsz), 2.0);
	double		per_inner = Max(floor(usable * BTREE_NONLEAF_FILLFACTOR / 100.0 / itemsz), 2.0);
	double		level;
	double		total;
	int			h = 0;

	if (tuples < 1.0)
		tuples = 1.0;
	level = ceil(tuples / per_leaf);
	total = level;
	while (level > 1.0)
	{
		level = ceil(level / per_inner);
		total += level;
		h++;
	}
	total += 1.0;				/* meta page */
	if (total > (double) MaxBlockNumber)
		total = (double) MaxBlockNumber;
	*pages = (BlockNumber) total;
	*height = h;
}

/*
 * make_hypo_index
 *		The IndexOptInfo of a hypothetical btree index for the planner, in
 *		the planner's memory context.  All catalog facts were looked up when
 *		the candidate was built; this only reads the AM routine.
 */
static IndexOptInfo *
make_hypo_index(RelOptInfo *rel, pfgCandidate *c, Oid fakeoid)
{
	IndexOptInfo *info = makeNode(IndexOptInfo);
	IndexAmRoutine *am = GetIndexAmRoutineByAmId(BTREE_AM_OID, false);
	int			n = c->ncols;
	int			i;

	info->indexoid = fakeoid;
	info->reltablespace = rel->reltablespace;
	info->rel = rel;
	info->ncolumns = n;
	info->nkeycolumns = n;
	info->indexkeys = (int *) palloc(sizeof(int) * n);
	info->indexcollations = (Oid *) palloc(sizeof(Oid) * n);
	info->opfamily = (Oid *) palloc(sizeof(Oid) * n);
	info->opcintype = (Oid *) palloc(sizeof(Oid) * n);
	info->reverse_sort = (bool *) palloc(sizeof(bool) * n);
	info->nulls_first = (bool *) palloc(sizeof(bool) * n);
	info->canreturn = (bool *) palloc(sizeof(bool) * n);
	info->opclassoptions = (bytea **) palloc0(sizeof(bytea *) * n);
	info->indextlist = NIL;
	for (i = 0; i < n; i++)
	{
		Var		   *var;

		info->indexkeys[i] = c->attnos[i];
		info->indexcollations[i] = c->attcoll[i];
		info->opfamily[i] = c->opfamily[i];
		info->opcintype[i] = c->opcintype[i];
		info->reverse_sort[i] = c->desc[i];
		info->nulls_first[i] = c->nulls_first[i];
		info->canreturn[i] = true;	/* btree returns its keys */
		var = makeVar(rel->relid, c->attnos[i], c->atttype[i],
					  c->atttypmod[i], c->attcoll[i], 0);
		info->indextlist = lappend(info->indextlist,
								   makeTargetEntry((Expr *) var, i + 1,
												   NULL, false));
	}
	/* a btree's opfamilies are its sort opfamilies */
	info->sortopfamily = info->opfamily;
	info->relam = BTREE_AM_OID;
	info->indexprs = NIL;
	info->indpred = NIL;
	info->predOK = false;
	info->unique = false;
	info->immediate = true;
	info->hypothetical = true;
	info->amcanorderbyop = am->amcanorderbyop;
	info->amoptionalkey = am->amoptionalkey;
	info->amsearcharray = am->amsearcharray;
	info->amsearchnulls = am->amsearchnulls;
	info->amhasgettuple = (am->amgettuple != NULL);
	info->amhasgetbitmap = (am->amgetbitmap != NULL);
	info->amcanparallel = am->amcanparallel;
	info->amcanmarkpos = (am->ammarkpos != NULL && am->amrestrpos != NULL);
	info->amcostestimate = am->amcostestimate;

	info->tuples = rel->tuples;
	estimate_btree_size(rel->tuples, c->keywidth, &info->pages,
						&info->tree_height);
	c->est_pages = info->pages;
	return info;
}

/*
 * pfg_get_relation_info
 *		Append the active hypothetical indexes of this table.  One branch
 *		when none is active (always, except while this file plans).
 */
static void
pfg_get_relation_info(PlannerInfo *root, Oid relationObjectId,
					  bool inhparent, RelOptInfo *rel)
{
	int			i;

	if (prev_get_relation_info_hook)
		prev_get_relation_info_hook(root, relationObjectId, inhparent, rel);

	if (likely(hypo_nactive == 0))
		return;
	if (inhparent)
		return;
	for (i = 0; i < hypo_nactive; i++)
	{
		if (hypo_active[i]->relid == relationObjectId)
			rel->indexlist = lappend(rel->indexlist,
									 make_hypo_index(rel, hypo_active[i],
													 PFG_HYPO_OID_BASE - i));
	}
}

/*---- planning ----*/

/*
 * analyse_one
 *		Parse, analyse and rewrite one statement (with $n placeholders) into
 *		its Query.  With "strict" (perfguard.advise) bad input raises the
 *		documented errors; otherwise NULL is returned for anything that is
 *		not one SELECT/UPDATE/DELETE.  Other errors propagate.
 */
static Query *
analyse_one(const char *text, bool strict)
{
	List	   *raw;
	RawStmt    *rs;
	Node	   *stmt;
	Oid		   *ptypes = NULL;
	int			nparams = 0;
	Query	   *q;
	List	   *rewritten;
	bool		ok;

	raw = raw_parser(text, RAW_PARSE_DEFAULT);
	if (list_length(raw) != 1)
	{
		if (!strict)
			return NULL;
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("query must contain exactly one statement, found %d",
						list_length(raw)),
				 errhint("Pass one SELECT, UPDATE or DELETE statement.")));
	}
	rs = linitial_node(RawStmt, raw);
	stmt = rs->stmt;
	ok = (IsA(stmt, SelectStmt) && ((SelectStmt *) stmt)->intoClause == NULL) ||
		IsA(stmt, UpdateStmt) || IsA(stmt, DeleteStmt);
	if (!ok)
	{
		if (!strict)
			return NULL;
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("perfguard.advise() only supports SELECT, UPDATE and DELETE statements"),
				 errhint("Pass the statement to analyse, not a command that changes the schema or inserts rows.")));
	}

	q = parse_analyze_varparams(rs, text, &ptypes, &nparams, NULL);
	rewritten = QueryRewrite(q);
	if (list_length(rewritten) != 1)
	{
		if (!strict)
			return NULL;
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("query is rewritten into %d statements", list_length(rewritten)),
				 errhint("perfguard.advise() analyses statements that rules do not expand.")));
	}
	q = linitial_node(Query, rewritten);
	if (q->utilityStmt != NULL ||
		(q->commandType != CMD_SELECT && q->commandType != CMD_UPDATE &&
		 q->commandType != CMD_DELETE))
	{
		if (!strict)
			return NULL;
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("perfguard.advise() only supports SELECT, UPDATE and DELETE statements")));
	}
	return q;
}

/*
 * plan_query
 *		Plan a copy of "q" (the planner scribbles on its input) with "cand"
 *		as the only hypothetical index (or none).  The list is reset however
 *		planning ends.
 */
static PlannedStmt *
plan_query(Query *q, const char *text, pfgCandidate *cand)
{
	PlannedStmt *volatile pstmt = NULL;
	Query	   *copy = copyObject(q);

	if (cand)
	{
		hypo_active[0] = cand;
		hypo_nactive = 1;
	}
	PG_TRY();
	{
		pstmt = pg_plan_query(copy, text, CURSOR_OPT_PARALLEL_OK, NULL);
	}
	PG_FINALLY();
	{
		hypo_nactive = 0;
		hypo_active[0] = NULL;
	}
	PG_END_TRY();
	return pstmt;
}

/*---- plan walk ----*/

static double
rel_reltuples(Oid relid)
{
	HeapTuple	tp = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	double		r = -1;

	if (HeapTupleIsValid(tp))
	{
		Form_pg_class c = (Form_pg_class) GETSTRUCT(tp);

		if (c->relkind == RELKIND_RELATION || c->relkind == RELKIND_MATVIEW)
			r = c->reltuples;
		ReleaseSysCache(tp);
	}
	return r;
}

static void walk_plan(Plan *plan, PlannedStmt *pstmt, bool under_sort,
					  List **targets);

static void
walk_plan_list(List *plans, PlannedStmt *pstmt, bool under_sort, List **targets)
{
	ListCell   *lc;

	foreach(lc, plans)
		walk_plan((Plan *) lfirst(lc), pstmt, under_sort, targets);
}

/*
 * walk_plan
 *		Collect the scans of big tables that filter, or that feed a Sort
 *		(directly or through a Gather).
 */
static void
walk_plan(Plan *plan, PlannedStmt *pstmt, bool under_sort, List **targets)
{
	Index		scanrelid = 0;
	List	   *quals = NIL;
	const char *node = NULL;

	if (plan == NULL)
		return;
	check_stack_depth();

	switch (nodeTag(plan))
	{
		case T_SeqScan:
			scanrelid = ((Scan *) plan)->scanrelid;
			quals = plan->qual;
			node = "Seq Scan";
			break;
		case T_IndexScan:
			scanrelid = ((Scan *) plan)->scanrelid;
			if (plan->qual != NIL)
				quals = list_concat_copy(((IndexScan *) plan)->indexqualorig,
										 plan->qual);
			node = "Index Scan";
			break;
		case T_BitmapHeapScan:
			scanrelid = ((Scan *) plan)->scanrelid;
			if (plan->qual != NIL)
				quals = list_concat_copy(((BitmapHeapScan *) plan)->bitmapqualorig,
										 plan->qual);
			node = "Bitmap Heap Scan";
			break;
		default:
			break;
	}

	if (node != NULL)
	{
		RangeTblEntry *rte = rt_fetch(scanrelid, pstmt->rtable);

		if (rte->rtekind == RTE_RELATION &&
			(quals != NIL || (under_sort && nodeTag(plan) == T_SeqScan)))
		{
			double		reltuples = rel_reltuples(rte->relid);

			if (reltuples >= PFG_BIG_TABLE_ROWS)
			{
				scanTarget *t = palloc0(sizeof(scanTarget));

				t->relid = rte->relid;
				t->scanrelid = scanrelid;
				t->node = node;
				t->quals = quals;
				t->reltuples = reltuples;
				t->plan_rows = plan->plan_rows;
				t->under_sort = under_sort;
				*targets = lappend(*targets, t);
			}
		}
		return;
	}

	switch (nodeTag(plan))
	{
		case T_Sort:
		case T_IncrementalSort:
			walk_plan(plan->lefttree, pstmt, true, targets);
			return;
		case T_Gather:
		case T_GatherMerge:
		case T_Material:
		case T_Limit:
			walk_plan(plan->lefttree, pstmt, under_sort, targets);
			return;
		case T_Append:
			walk_plan_list(((Append *) plan)->appendplans, pstmt, false, targets);
			break;
		case T_MergeAppend:
			walk_plan_list(((MergeAppend *) plan)->mergeplans, pstmt, false, targets);
			break;
		case T_SubqueryScan:
			walk_plan(((SubqueryScan *) plan)->subplan, pstmt, false, targets);
			break;
		case T_CustomScan:
			walk_plan_list(((CustomScan *) plan)->custom_plans, pstmt, false, targets);
			break;
		default:
			break;
	}
	walk_plan(plan->lefttree, pstmt, false, targets);
	walk_plan(plan->righttree, pstmt, false, targets);
}

/*---- candidate columns ----*/

static Node *
strip_implicit(Node *n)
{
	while (n && (IsA(n, RelabelType) ||
				 (IsA(n, FuncExpr) &&
				  ((FuncExpr *) n)->funcformat == COERCE_IMPLICIT_CAST &&
				  list_length(((FuncExpr *) n)->args) == 1)))
	{
		if (IsA(n, RelabelType))
			n = (Node *) ((RelabelType *) n)->arg;
		else
			n = linitial(((FuncExpr *) n)->args);
	}
	return n;
}

/* Default btree opfamily of a type, or InvalidOid. */
static Oid
btree_opfamily_of(Oid typid, Oid *opcintype)
{
	Oid			opclass = GetDefaultOpClass(typid, BTREE_AM_OID);

	if (!OidIsValid(opclass))
		return InvalidOid;
	if (opcintype)
		*opcintype = get_opclass_input_type(opclass);
	return get_opclass_family(opclass);
}

static void
add_col(AttrNumber *cols, int *n, AttrNumber att)
{
	int			i;

	for (i = 0; i < *n; i++)
		if (cols[i] == att)
			return;
	if (*n < PFG_MAX_COLS)
		cols[(*n)++] = att;
}

/* The plain column of this scan a qual operand is, or NULL. */
static Var *
scan_var(Node *n, Index scanrelid)
{
	n = strip_implicit(n);
	if (n && IsA(n, Var) && ((Var *) n)->varno == scanrelid &&
		((Var *) n)->varattno > 0 && ((Var *) n)->varlevelsup == 0)
		return (Var *) n;
	return NULL;
}

/* Does an operand not depend on the scanned row? */
static bool
row_independent(Node *n)
{
	return !contain_var_clause(n) && !contain_volatile_functions(n);
}

/*
 * classify_quals
 *		Sort the scan's quals into equality and range columns (as the
 *		column type's default btree opfamily sees the operator), and
 *		describe them for the reason text ("a =, b >").
 */
static void
classify_quals(List *quals, Index scanrelid, Oid relid,
			   AttrNumber *eq, int *neq, AttrNumber *range, int *nrange,
			   StringInfo desc)
{
	ListCell   *lc;
	List	   *conj = NIL;

	foreach(lc, quals)
	{
		Node	   *n = lfirst(lc);

		if (IsA(n, BoolExpr) && ((BoolExpr *) n)->boolop == AND_EXPR)
			conj = list_concat(conj, ((BoolExpr *) n)->args);
		else
			conj = lappend(conj, n);
	}

	foreach(lc, conj)
	{
		Node	   *n = lfirst(lc);
		Var		   *var = NULL;
		Oid			opno = InvalidOid;
		bool		is_eq = false;
		bool		is_range = false;
		const char *what = NULL;

		if (IsA(n, OpExpr) && list_length(((OpExpr *) n)->args) == 2)
		{
			OpExpr	   *op = (OpExpr *) n;

			if ((var = scan_var(linitial(op->args), scanrelid)) &&
				row_independent(lsecond(op->args)))
				opno = op->opno;
			else if ((var = scan_var(lsecond(op->args), scanrelid)) &&
					 row_independent(linitial(op->args)))
				opno = get_commutator(op->opno);
			else
				var = NULL;
		}
		else if (IsA(n, ScalarArrayOpExpr) && ((ScalarArrayOpExpr *) n)->useOr)
		{
			ScalarArrayOpExpr *op = (ScalarArrayOpExpr *) n;

			if ((var = scan_var(linitial(op->args), scanrelid)) &&
				row_independent(lsecond(op->args)))
			{
				opno = op->opno;
				what = "= ANY";
			}
			else
				var = NULL;
		}
		else if (IsA(n, NullTest) &&
				 ((NullTest *) n)->nulltesttype == IS_NULL &&
				 (var = scan_var((Node *) ((NullTest *) n)->arg, scanrelid)))
		{
			is_eq = true;
			what = "IS NULL";
		}
		else if ((var = scan_var(n, scanrelid)) && var->vartype == BOOLOID)
		{
			is_eq = true;
			what = "(boolean)";
		}
		else if (IsA(n, BoolExpr) && ((BoolExpr *) n)->boolop == NOT_EXPR &&
				 (var = scan_var(linitial(((BoolExpr *) n)->args), scanrelid)) &&
				 var->vartype == BOOLOID)
		{
			is_eq = true;
			what = "(NOT boolean)";
		}
		else
			var = NULL;

		if (var == NULL)
			continue;

		if (OidIsValid(opno))
		{
			Oid			fam = btree_opfamily_of(var->vartype, NULL);
			int			strategy;

			if (!OidIsValid(fam))
				continue;
			strategy = get_op_opfamily_strategy(opno, fam);
			if (strategy == BTEqualStrategyNumber)
			{
				is_eq = true;
				if (what == NULL)
					what = "=";
			}
			else if (strategy >= BTLessStrategyNumber &&
					 strategy <= BTGreaterStrategyNumber && what == NULL)
			{
				is_range = true;
				what = (strategy == BTLessStrategyNumber) ? "<" :
					(strategy == BTLessEqualStrategyNumber) ? "<=" :
					(strategy == BTGreaterEqualStrategyNumber) ? ">=" : ">";
			}
		}
		if (!is_eq && !is_range)
			continue;
		if (is_eq)
			add_col(eq, neq, var->varattno);
		else
			add_col(range, nrange, var->varattno);
		appendStringInfo(desc, "%s%s %s", desc->len ? ", " : "",
						 quote_identifier(get_attname(relid, var->varattno, false)),
						 what);
	}
}

/*
 * order_columns
 *		The statement's ORDER BY when every key is a plain column of the one
 *		range-table entry of a table (self-joins are left alone).
 */
static void
order_columns(Query *q, orderCols *oc)
{
	ListCell   *lc;
	Index		varno = 0;
	int			nasc = 0,
				ndesc_default = 0;
	int			i;

	memset(oc, 0, sizeof(*oc));
	if (q->sortClause == NIL || q->commandType != CMD_SELECT)
		return;
	foreach(lc, q->sortClause)
	{
		SortGroupClause *sc = lfirst(lc);
		Node	   *e = strip_implicit((Node *) get_sortgroupclause_expr(sc, q->targetList));
		Var		   *v;
		Oid			fam,
					intype;
		int16		strategy;
		RangeTblEntry *rte;

		if (e == NULL || !IsA(e, Var))
			goto fail;
		v = (Var *) e;
		if (v->varlevelsup != 0 || v->varattno <= 0 ||
			(varno != 0 && v->varno != varno))
			goto fail;
		varno = v->varno;
		rte = rt_fetch(varno, q->rtable);
		if (rte->rtekind != RTE_RELATION)
			goto fail;
		if (!get_ordering_op_properties(sc->sortop, &fam, &intype, &strategy))
			goto fail;
		if (oc->n >= PFG_MAX_COLS)
			break;
		oc->attnos[oc->n] = v->varattno;
		oc->desc[oc->n] = (strategy == BTGreaterStrategyNumber);
		oc->nulls_first[oc->n] = sc->nulls_first;
		if (!oc->desc[oc->n] && !oc->nulls_first[oc->n])
			nasc++;
		if (oc->desc[oc->n] && oc->nulls_first[oc->n])
			ndesc_default++;
		oc->n++;
		oc->relid = rte->relid;
	}
	/* the table must appear once, or we cannot tell which scan sorts */
	{
		int			seen = 0;

		foreach(lc, q->rtable)
		{
			RangeTblEntry *rte = lfirst(lc);

			if (rte->rtekind == RTE_RELATION && rte->relid == oc->relid)
				seen++;
		}
		if (seen != 1)
			goto fail;
	}
	/* all DESC (NULLS FIRST): an ascending index scanned backward serves it */
	if (ndesc_default == oc->n)
	{
		for (i = 0; i < oc->n; i++)
			oc->desc[i] = oc->nulls_first[i] = false;
	}
	return;

fail:
	memset(oc, 0, sizeof(*oc));
}

/*
 * fill_candidate
 *		Look up the catalog facts of the candidate's columns; false when a
 *		column has no default btree operator class.
 */
static bool
fill_candidate(pfgCandidate *c)
{
	int			i;

	c->keywidth = 0;
	for (i = 0; i < c->ncols; i++)
	{
		int32		w;

		get_atttypetypmodcoll(c->relid, c->attnos[i], &c->atttype[i],
							  &c->atttypmod[i], &c->attcoll[i]);
		c->opfamily[i] = btree_opfamily_of(c->atttype[i], &c->opcintype[i]);
		if (!OidIsValid(c->opfamily[i]))
			return false;
		w = get_attavgwidth(c->relid, c->attnos[i]);
		if (w <= 0)
			w = get_typavgwidth(c->atttype[i], c->atttypmod[i]);
		c->keywidth += w;
	}
	return c->ncols > 0;
}

/* Access method of a relation, or InvalidOid. */
static Oid
rel_am(Oid relid)
{
	HeapTuple	tp = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	Oid			am = InvalidOid;

	if (HeapTupleIsValid(tp))
	{
		am = ((Form_pg_class) GETSTRUCT(tp))->relam;
		ReleaseSysCache(tp);
	}
	return am;
}

/*
 * covering_index
 *		The first valid, non-partial btree index of the open table whose key
 *		starts with these columns (in order), or InvalidOid.
 */
static Oid
covering_index(Relation rel, int ncols, const AttrNumber *attnos)
{
	List	   *indexes = RelationGetIndexList(rel);
	ListCell   *lc;
	Oid			found = InvalidOid;

	foreach(lc, indexes)
	{
		HeapTuple	tp = SearchSysCache1(INDEXRELID, ObjectIdGetDatum(lfirst_oid(lc)));
		Form_pg_index ix;
		bool		same = true;
		int			i;

		if (!HeapTupleIsValid(tp))
			continue;
		ix = (Form_pg_index) GETSTRUCT(tp);
		if (!ix->indisvalid || ix->indnkeyatts < ncols ||
			!heap_attisnull(tp, Anum_pg_index_indpred, NULL) ||
			rel_am(ix->indexrelid) != BTREE_AM_OID)
			same = false;
		for (i = 0; same && i < ncols; i++)
			if (ix->indkey.values[i] != attnos[i])
				same = false;
		ReleaseSysCache(tp);
		if (same)
		{
			found = lfirst_oid(lc);
			break;
		}
	}
	list_free(indexes);
	return found;
}

/*
 * existing_index_covers
 *		Does a valid, non-partial btree index of the table start with the
 *		candidate's columns (in order)?  Then the planner already had it.
 */
static bool
existing_index_covers(const pfgCandidate *c)
{
	Relation	rel = table_open(c->relid, AccessShareLock);
	bool		found = OidIsValid(covering_index(rel, c->ncols, c->attnos));

	table_close(rel, AccessShareLock);
	return found;
}

static bool
same_columns(const pfgCandidate *a, const pfgCandidate *b)
{
	int			i;

	if (a->relid != b->relid || a->ncols != b->ncols)
		return false;
	for (i = 0; i < a->ncols; i++)
		if (a->attnos[i] != b->attnos[i] || a->desc[i] != b->desc[i] ||
			a->nulls_first[i] != b->nulls_first[i])
			return false;
	return true;
}

/* Is a's key a leading prefix of b's (a shorter)? */
static bool
is_prefix(const pfgCandidate *a, const pfgCandidate *b)
{
	int			i;

	if (a->relid != b->relid || a->ncols >= b->ncols)
		return false;
	for (i = 0; i < a->ncols; i++)
		if (a->attnos[i] != b->attnos[i] || a->desc[i] != b->desc[i] ||
			a->nulls_first[i] != b->nulls_first[i])
			return false;
	return true;
}

/* Append columns (ascending unless given) to a candidate, skipping repeats. */
static void
cand_add(pfgCandidate *c, const AttrNumber *cols, int n,
		 const bool *desc, const bool *nulls_first)
{
	int			i,
				j;

	for (i = 0; i < n && c->ncols < PFG_MAX_COLS; i++)
	{
		bool		dup = false;

		for (j = 0; j < c->ncols; j++)
			if (c->attnos[j] == cols[i])
				dup = true;
		if (dup)
			continue;
		c->attnos[c->ncols] = cols[i];
		c->desc[c->ncols] = desc ? desc[i] : false;
		c->nulls_first[c->ncols] = nulls_first ? nulls_first[i] : false;
		c->ncols++;
	}
}

static void
cand_push(List **list, pfgCandidate *c)
{
	ListCell   *lc;

	if (c->ncols == 0 || list_length(*list) >= PFG_MAX_CANDIDATES)
		return;
	foreach(lc, *list)
		if (same_columns(lfirst(lc), c))
			return;
	*list = lappend(*list, c);
}

static pfgCandidate *
new_candidate(Oid relid)
{
	pfgCandidate *c = palloc0(sizeof(pfgCandidate));

	c->relid = relid;
	return c;
}

/*
 * build_candidates
 *		The candidate indexes for one scanned table (see the file header).
 */
static List *
build_candidates(Oid relid, AttrNumber *eq, int neq, AttrNumber *range,
				 int nrange, const orderCols *oc)
{
	List	   *out = NIL;
	List	   *valid = NIL;
	ListCell   *lc;
	bool		has_order = (oc->n > 0 && oc->relid == relid);
	pfgCandidate *c;
	int			i;

#define NEWCAND() (c = new_candidate(relid))

	if (neq + nrange > 0)
	{
		/* equality, then the first range column, then the order */
		NEWCAND();
		cand_add(c, eq, neq, NULL, NULL);
		cand_add(c, range, Min(nrange, 1), NULL, NULL);
		if (has_order)
		{
			pfgCandidate *full = NEWCAND();

			*full = *c;
			cand_add(full, oc->attnos, oc->n, oc->desc, oc->nulls_first);
			cand_push(&out, full);
		}
		cand_push(&out, c);
		/* equality, then the order (the range filtered in the heap) */
		if (has_order && nrange > 0)
		{
			NEWCAND();
			cand_add(c, eq, neq, NULL, NULL);
			cand_add(c, oc->attnos, oc->n, oc->desc, oc->nulls_first);
			cand_push(&out, c);
		}
		/* equality only */
		if (neq > 0 && (nrange > 0 || has_order))
		{
			NEWCAND();
			cand_add(c, eq, neq, NULL, NULL);
			cand_push(&out, c);
		}
		/* single columns */
		for (i = 0; i < neq + nrange; i++)
		{
			AttrNumber	a = (i < neq) ? eq[i] : range[i - neq];

			NEWCAND();
			cand_add(c, &a, 1, NULL, NULL);
			cand_push(&out, c);
		}
	}
	else if (has_order)
	{
		NEWCAND();
		cand_add(c, oc->attnos, oc->n, oc->desc, oc->nulls_first);
		cand_push(&out, c);
	}
#undef NEWCAND

	foreach(lc, out)
	{
		pfgCandidate *cc = lfirst(lc);

		if (fill_candidate(cc) && !existing_index_covers(cc))
			valid = lappend(valid, cc);
	}
	return valid;
}

static char *
qualified_rel(Oid relid)
{
	return quote_qualified_identifier(get_namespace_name(get_rel_namespace(relid)),
									  get_rel_name(relid));
}

/* "a, b DESC" */
static char *
cand_columns_sql(const pfgCandidate *c)
{
	StringInfoData buf;
	int			i;

	initStringInfo(&buf);
	for (i = 0; i < c->ncols; i++)
	{
		appendStringInfo(&buf, "%s%s", i ? ", " : "",
						 quote_identifier(get_attname(c->relid, c->attnos[i], false)));
		if (c->desc[i])
			appendStringInfoString(&buf, " DESC");
		if (c->nulls_first[i] != c->desc[i])
			appendStringInfoString(&buf, c->nulls_first[i] ? " NULLS FIRST" : " NULLS LAST");
	}
	return buf.data;
}

static char *
cand_ddl(const pfgCandidate *c)
{
	return psprintf("CREATE INDEX CONCURRENTLY ON %s (%s)",
					qualified_rel(c->relid), cand_columns_sql(c));
}

/*
 * analyse_statement
 *		Plan one statement, find its scans of big tables that filter or sort,
 *		and prove the best candidate index for each such table.  With
 *		"want_findings" also describe the plan findings (perfguard.advise).
 *		Errors propagate; the caller decides whether they skip the statement.
 */
static void
analyse_statement(const char *text, bool strict, bool check_perms,
				  bool want_findings, stmtAnalysis *out)
{
	Query	   *q;
	PlannedStmt *pstmt;
	List	   *targets = NIL;
	List	   *done_rels = NIL;
	orderCols	oc;
	ListCell   *lc;

	memset(out, 0, sizeof(*out));
	q = analyse_one(text, strict);
	if (q == NULL)
		return;
	if (check_perms && !ExecCheckRTPerms(q->rtable, strict))
		return;
	order_columns(q, &oc);

	pstmt = plan_query(q, text, NULL);
	out->cost_before = pstmt->planTree->total_cost;
	walk_plan(pstmt->planTree, pstmt, false, &targets);
	walk_plan_list(pstmt->subplans, pstmt, false, &targets);

	foreach(lc, targets)
	{
		scanTarget *t = lfirst(lc);
		AttrNumber	eq[PFG_MAX_COLS],
					range[PFG_MAX_COLS];
		int			neq = 0,
					nrange = 0;
		StringInfoData desc;
		List	   *cands;
		ListCell   *lc2;
		provenIndex *best = NULL;
		char	   *relname = qualified_rel(t->relid);

		initStringInfo(&desc);
		classify_quals(t->quals, t->scanrelid, t->relid, eq, &neq, range,
					   &nrange, &desc);

		if (want_findings)
		{
			planFinding *f = palloc0(sizeof(planFinding));

			f->relation = relname;
			if (t->quals != NIL && strcmp(t->node, "Seq Scan") == 0)
			{
				f->kind = "seq_scan_large";
				f->detail = psprintf("Seq Scan on %s (%.0f rows) keeps an estimated %.0f rows%s%s",
									 relname, t->reltuples, t->plan_rows,
									 desc.len ? " filtering on " : " after a filter",
									 desc.len ? desc.data : "");
			}
			else if (t->quals != NIL)
			{
				f->kind = "filter_large";
				f->detail = psprintf("%s on %s (%.0f rows) still filters rows after the index%s%s",
									 t->node, relname, t->reltuples,
									 desc.len ? "; conditions: " : "",
									 desc.len ? desc.data : "");
			}
			if (f->kind)
				out->findings = lappend(out->findings, f);
			if (t->under_sort)
			{
				f = palloc0(sizeof(planFinding));
				f->relation = relname;
				f->kind = "sort_large";
				f->detail = psprintf("Sort over a %s of %s (%.0f rows): no index provides the order",
									 t->node, relname, t->reltuples);
				out->findings = lappend(out->findings, f);
			}
		}

		/* one proof per table and statement */
		if (list_member_oid(done_rels, t->relid))
			continue;
		done_rels = lappend_oid(done_rels, t->relid);

		cands = build_candidates(t->relid, eq, neq, range, nrange, &oc);
		foreach(lc2, cands)
		{
			pfgCandidate *c = lfirst(lc2);
			PlannedStmt *p = plan_query(q, text, c);
			double		cost = p->planTree->total_cost;

			elog(DEBUG1, "perfguard: candidate (%s) on %s: cost %.2f (before %.2f)",
				 cand_columns_sql(c), relname, cost, out->cost_before);

			if (best == NULL ||
				cost < best->cost_after * 0.99 ||
				(cost <= best->cost_after * 1.01 && c->ncols < best->cand.ncols))
			{
				if (best == NULL)
					best = palloc0(sizeof(provenIndex));
				best->cand = *c;
				best->cost_after = cost;
			}
		}
		if (best && out->cost_before > 0 &&
			best->cost_after <= out->cost_before * (1.0 - PFG_MIN_IMPROVEMENT))
		{
			best->cost_before = out->cost_before;
			best->scan_desc = psprintf("%s on %s%s%s%s", t->node, relname,
									   desc.len ? " filters on " : "",
									   desc.len ? desc.data : "",
									   t->under_sort ? (desc.len ? " and feeds a Sort" : " feeds a Sort") : "");
			out->proven = lappend(out->proven, best);
		}
		else
			out->tried = lappend(out->tried, relname);
	}
}

/*---- perfguard.index_advice (kind 'missing') ----*/

typedef struct stmtCollect
{
	List	   *items;
	bool		all;
	Oid			me;
} stmtCollect;

static void
collect_stmt_cb(const void *entry, void *arg)
{
	const pfgStmtEntry *e = (const pfgStmtEntry *) entry;
	stmtCollect *sc = (stmtCollect *) arg;
	ListCell   *lc;
	stmtItem   *it;

	if (e->key.dbid != MyDatabaseId || e->query[0] == '\0' ||
		e->counters.calls <= 0)
		return;
	if (e->cmdtype != CMD_SELECT && e->cmdtype != CMD_UPDATE &&
		e->cmdtype != CMD_DELETE)
		return;
	if (!sc->all && e->key.userid != sc->me)
		return;
	/* one analysis per fingerprint, whoever ran it */
	foreach(lc, sc->items)
	{
		it = lfirst(lc);
		if (it->queryid == e->key.queryid)
		{
			it->calls += e->counters.calls;
			it->total_ms += e->counters.total_ms;
			return;
		}
	}
	it = palloc0(sizeof(stmtItem));
	it->queryid = e->key.queryid;
	it->calls = e->counters.calls;
	it->total_ms = e->counters.total_ms;
	it->query = pstrdup(e->query);
	sc->items = lappend(sc->items, it);
}

/*
 * run_guarded
 *		Run fn(arg) in an internal subtransaction that is always rolled back
 *		(releasing parse-analysis locks); false if it failed.  Memory
 *		allocated by fn in "keepcxt" survives.  A query cancel is re-thrown.
 */
static bool
run_guarded(void (*fn) (void *), void *arg, MemoryContext keepcxt)
{
	MemoryContext oldcxt = CurrentMemoryContext;
	ResourceOwner oldowner = CurrentResourceOwner;
	volatile bool ok = true;

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(keepcxt);
	PG_TRY();
	{
		fn(arg);
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(oldcxt);
		edata = CopyErrorData();
		FlushErrorState();
		ok = false;
		if (edata->sqlerrcode == ERRCODE_QUERY_CANCELED ||
			edata->sqlerrcode == ERRCODE_ADMIN_SHUTDOWN)
		{
			RollbackAndReleaseCurrentSubTransaction();
			MemoryContextSwitchTo(oldcxt);
			CurrentResourceOwner = oldowner;
			ReThrowError(edata);
		}
		FreeErrorData(edata);
	}
	PG_END_TRY();
	RollbackAndReleaseCurrentSubTransaction();
	MemoryContextSwitchTo(oldcxt);
	CurrentResourceOwner = oldowner;
	return ok;
}

typedef struct analyseArgs
{
	const char *text;
	stmtAnalysis result;
} analyseArgs;

static void
analyse_guarded_fn(void *arg)
{
	analyseArgs *a = (analyseArgs *) arg;

	analyse_statement(a->text, false, true, false, &a->result);
}

typedef struct costArgs
{
	const char *text;
	pfgCandidate *cand;
	double		before;
	double		after;
} costArgs;

static void
cost_guarded_fn(void *arg)
{
	costArgs   *a = (costArgs *) arg;
	Query	   *q = analyse_one(a->text, false);

	if (q == NULL)
		elog(ERROR, "statement no longer analyses");
	a->before = plan_query(q, a->text, NULL)->planTree->total_cost;
	a->after = plan_query(q, a->text, a->cand)->planTree->total_cost;
}

static int
cmp_int64(const void *a, const void *b)
{
	int64		x = *(const int64 *) a;
	int64		y = *(const int64 *) b;

	return (x > y) - (x < y);
}

static double
row_saving(adviceRow *r, double *before, double *after, int64 *calls,
		   double *impact)
{
	ListCell   *ls,
			   *lb,
			   *la;
	double		wb = 0,
				wa = 0,
				imp = 0;
	int64		n = 0;

	forthree(ls, r->stmts, lb, r->before, la, r->after)
	{
		stmtItem   *s = lfirst(ls);
		double		b = *(double *) lfirst(lb);
		double		a = *(double *) lfirst(la);

		wb += s->calls * b;
		wa += s->calls * a;
		n += s->calls;
		if (b > 0)
			imp += s->total_ms * (1.0 - a / b);
	}
	if (before)
		*before = n ? wb / n : 0;
	if (after)
		*after = n ? wa / n : 0;
	if (calls)
		*calls = n;
	if (impact)
		*impact = imp;
	return wb - wa;
}

static int
cmp_rows(const ListCell *a, const ListCell *b)
{
	double		x = row_saving(lfirst(a), NULL, NULL, NULL, NULL);
	double		y = row_saving(lfirst(b), NULL, NULL, NULL, NULL);

	return (x < y) - (x > y);
}

static double *
dbl(double v)
{
	double	   *p = palloc(sizeof(double));

	*p = v;
	return p;
}

/*---- closed loop: remembered advice, applied or not ----*/

static void
qid_collect_cb(const void *entry, void *arg)
{
	const pfgStmtEntry *e = (const pfgStmtEntry *) entry;
	qidStats   *qs = (qidStats *) arg;

	if (e->key.dbid != MyDatabaseId)
		return;
	if (qs->n == qs->cap)
	{
		qs->cap = qs->cap ? qs->cap * 2 : 64;
		qs->items = qs->items ? repalloc(qs->items, sizeof(qidStat) * qs->cap) :
			palloc(sizeof(qidStat) * qs->cap);
	}
	qs->items[qs->n].queryid = e->key.queryid;
	qs->items[qs->n].calls = e->counters.calls;
	qs->items[qs->n].total_ms = e->counters.total_ms;
	qs->n++;
}

static int
cmp_qidstat(const void *a, const void *b)
{
	uint64		x = ((const qidStat *) a)->queryid;
	uint64		y = ((const qidStat *) b)->queryid;

	return (x > y) - (x < y);
}

/*
 * qid_stats_build
 *		The cumulative calls and time of every query id of this database,
 *		summed over users and nesting levels, sorted by query id.
 */
static void
qid_stats_build(qidStats *qs)
{
	int			i,
				j;

	memset(qs, 0, sizeof(*qs));
	pfg_store_foreach_statement(qid_collect_cb, qs);
	if (qs->n == 0)
		return;
	qsort(qs->items, qs->n, sizeof(qidStat), cmp_qidstat);
	for (i = 1, j = 0; i < qs->n; i++)
	{
		if (qs->items[i].queryid == qs->items[j].queryid)
		{
			qs->items[j].calls += qs->items[i].calls;
			qs->items[j].total_ms += qs->items[i].total_ms;
		}
		else
			qs->items[++j] = qs->items[i];
	}
	qs->n = j + 1;
}

static const qidStat *
qid_find(const qidStats *qs, uint64 queryid)
{
	qidStat		key;

	if (qs->n == 0)
		return NULL;
	key.queryid = queryid;
	return bsearch(&key, qs->items, qs->n, sizeof(qidStat), cmp_qidstat);
}

static bool
advice_same_key(const pfgAdviceEntry *e, Oid dbid, Oid relid, int ncols,
				const AttrNumber *attnos, const bool *desc,
				const bool *nulls_first)
{
	int			i;

	if (!e->used || e->dbid != dbid || e->relid != relid || e->ncols != ncols)
		return false;
	for (i = 0; i < ncols; i++)
		if (e->attnos[i] != attnos[i] || e->desc[i] != desc[i] ||
			e->nulls_first[i] != nulls_first[i])
			return false;
	return true;
}

/*
 * advice_remember
 *		Remember (or refresh) a 'missing' advice with a snapshot of its
 *		statements' counters, and return their mean time per call so far
 *		(-1 when none ran).  An entry still marked applied is being advised
 *		again, so its index is gone: it goes back to plain advice.  When the
 *		table is full, the oldest advice not applied makes room (or else the
 *		oldest applied one).  Only copies happen under the lock.
 */
static double
advice_remember(const pfgCandidate *c, const int64 *ids, int nq,
				const qidStats *qs, double before, double after)
{
	pfgAdviceEntry ne;
	double		sum_ms = 0;
	int64		sum_calls = 0;
	int			i,
				slot = -1,
				victim = -1;

	memset(&ne, 0, sizeof(ne));
	ne.used = true;
	ne.dbid = MyDatabaseId;
	ne.relid = c->relid;
	ne.ncols = c->ncols;
	memcpy(ne.attnos, c->attnos, sizeof(ne.attnos));
	memcpy(ne.desc, c->desc, sizeof(ne.desc));
	memcpy(ne.nulls_first, c->nulls_first, sizeof(ne.nulls_first));
	ne.nq = Min(nq, PFG_ADVICE_QIDS);
	for (i = 0; i < ne.nq; i++)
	{
		const qidStat *st = qid_find(qs, (uint64) ids[i]);

		ne.queryids[i] = (uint64) ids[i];
		ne.calls[i] = st ? st->calls : 0;
		ne.total_ms[i] = st ? st->total_ms : 0;
		sum_calls += ne.calls[i];
		sum_ms += ne.total_ms[i];
	}
	ne.est_cost_before = before;
	ne.est_cost_after = after;
	ne.est_improvement = before > 0 ? 1.0 - after / before : 0.0;
	ne.advised_at = GetCurrentTimestamp();

	if (advice_shared != NULL)
	{
		LWLockAcquire(advice_shared->lock, LW_EXCLUSIVE);
		for (i = 0; i < PFG_ADVICE_MAX; i++)
		{
			pfgAdviceEntry *e = &advice_shared->entries[i];

			if (advice_same_key(e, ne.dbid, ne.relid, ne.ncols, ne.attnos,
								ne.desc, ne.nulls_first))
			{
				slot = i;
				break;
			}
			if (!e->used)
			{
				if (victim < 0 || advice_shared->entries[victim].used)
					victim = i;
			}
			else if (victim < 0 ||
					 (advice_shared->entries[victim].used &&
					  (advice_shared->entries[victim].applied > e->applied ||
					   (advice_shared->entries[victim].applied == e->applied &&
						e->advised_at < advice_shared->entries[victim].advised_at))))
				victim = i;
		}
		if (slot < 0)
			slot = victim;
		if (slot >= 0)
			advice_shared->entries[slot] = ne;
		LWLockRelease(advice_shared->lock);
	}
	return sum_calls > 0 ? sum_ms / sum_calls : -1;
}

/*
 * advice_emit_applied
 *		The rows of remembered advice of this database whose index now
 *		exists (a valid, non-partial btree index whose key starts with the
 *		advised columns), with the mean time per call of the advised
 *		statements before the advice and since.  On the way, advice on a
 *		table that is gone is forgotten, and advice whose index was dropped
 *		goes back to plain advice.  A caller without pg_read_all_stats sees
 *		only advice on tables it may read.
 */
static void
advice_emit_applied(ReturnSetInfo *rsinfo, bool all, const qidStats *qs)
{
	pfgAdviceEntry *copy;
	int			ncopy = 0;
	int			i;
	TimestampTz stats_reset;
	int64		dummy;

	if (advice_shared == NULL)
		return;
	pfg_store_info(&stats_reset, &dummy, &dummy, &dummy, &dummy, &dummy,
				   &dummy);

	copy = palloc(sizeof(pfgAdviceEntry) * PFG_ADVICE_MAX);
	LWLockAcquire(advice_shared->lock, LW_SHARED);
	for (i = 0; i < PFG_ADVICE_MAX; i++)
		if (advice_shared->entries[i].used &&
			advice_shared->entries[i].dbid == MyDatabaseId)
			copy[ncopy++] = advice_shared->entries[i];
	LWLockRelease(advice_shared->lock);

	for (i = 0; i < ncopy; i++)
	{
		pfgAdviceEntry *e = &copy[i];
		Relation	rel = NULL;
		Relation	irel;
		Oid			idx = InvalidOid;
		bool		gone = true;
		pfgCandidate c;
		Datum		values[20];
		bool		nulls[20];
		Datum	   *cols;
		Datum	   *qids;
		int			j,
					k;
		int64		calls_now = 0,
					before_calls = 0,
					after_calls = 0;
		double		before_ms = 0,
					after_ms = 0,
					mean_before,
					mean_after;
		bool		restarted = (stats_reset > e->advised_at);
		int64		index_bytes = 0;
		char	   *idxname;

		if (SearchSysCacheExists1(RELOID, ObjectIdGetDatum(e->relid)))
			rel = try_relation_open(e->relid, AccessShareLock);
		if (rel != NULL)
		{
			char		relkind = rel->rd_rel->relkind;

			if (relkind == RELKIND_RELATION || relkind == RELKIND_MATVIEW)
			{
				gone = false;
				idx = covering_index(rel, e->ncols, e->attnos);
			}
			relation_close(rel, AccessShareLock);
		}

		/* bring the shared entry up to date */
		if (gone || (OidIsValid(idx) != e->applied) ||
			(OidIsValid(idx) && idx != e->applied_index))
		{
			LWLockAcquire(advice_shared->lock, LW_EXCLUSIVE);
			for (j = 0; j < PFG_ADVICE_MAX; j++)
			{
				pfgAdviceEntry *se = &advice_shared->entries[j];

				if (!advice_same_key(se, e->dbid, e->relid, e->ncols,
									 e->attnos, e->desc, e->nulls_first))
					continue;
				if (gone)
					se->used = false;
				else if (OidIsValid(idx))
				{
					if (!se->applied)
						se->applied_at = GetCurrentTimestamp();
					se->applied = true;
					se->applied_index = idx;
				}
				else
				{
					se->applied = false;
					se->applied_index = InvalidOid;
				}
				break;
			}
			LWLockRelease(advice_shared->lock);
		}
		if (gone || !OidIsValid(idx))
			continue;
		if (!all && pg_class_aclcheck(e->relid, GetUserId(), ACL_SELECT) != ACLCHECK_OK)
			continue;

		/* before: the snapshot; after: what the statements added since */
		for (k = 0; k < e->nq; k++)
		{
			const qidStat *st = qid_find(qs, e->queryids[k]);
			int64		nc = st ? st->calls : 0;
			double		nt = st ? st->total_ms : 0;

			calls_now += nc;
			before_calls += e->calls[k];
			before_ms += e->total_ms[k];
			if (restarted || nc < e->calls[k])
			{
				/* counters restarted (reset or eviction) since the advice */
				after_calls += nc;
				after_ms += nt;
			}
			else
			{
				after_calls += nc - e->calls[k];
				after_ms += nt - e->total_ms[k];
			}
		}
		mean_before = before_calls > 0 ? before_ms / before_calls : -1;
		mean_after = after_calls > 0 ? Max(after_ms, 0) / after_calls : -1;

		irel = try_relation_open(idx, AccessShareLock);
		if (irel != NULL)
		{
			index_bytes = (int64) RelationGetNumberOfBlocks(irel) * BLCKSZ;
			relation_close(irel, AccessShareLock);
		}
		idxname = get_rel_name(idx);
		if (idxname == NULL)
			continue;

		memset(&c, 0, sizeof(c));
		c.relid = e->relid;
		c.ncols = e->ncols;
		memcpy(c.attnos, e->attnos, sizeof(c.attnos));
		memcpy(c.desc, e->desc, sizeof(c.desc));
		memcpy(c.nulls_first, e->nulls_first, sizeof(c.nulls_first));

		memset(nulls, 0, sizeof(nulls));
		cols = palloc(sizeof(Datum) * c.ncols);
		for (j = 0; j < c.ncols; j++)
		{
			char	   *att = get_attname(c.relid, c.attnos[j], true);

			cols[j] = CStringGetTextDatum(att ? att : "?");
		}
		qids = palloc(sizeof(Datum) * Max(e->nq, 1));
		for (j = 0; j < e->nq; j++)
			qids[j] = Int64GetDatum((int64) e->queryids[j]);

		j = 0;
		values[j++] = CStringGetTextDatum("missing");
		values[j++] = CStringGetTextDatum(get_namespace_name(get_rel_namespace(c.relid)));
		values[j++] = CStringGetTextDatum(get_rel_name(c.relid));
		nulls[j++] = true;		/* index_name: see applied_index */
		values[j++] = PointerGetDatum(construct_array(cols, c.ncols, TEXTOID,
													  -1, false, TYPALIGN_INT));
		values[j++] = CStringGetTextDatum(cand_ddl(&c));
		if (mean_after >= 0 && mean_before > 0)
			values[j++] = CStringGetTextDatum(psprintf("applied: index %s serves (%s); its %d statement%s ran %lld times since the advice at a mean of %.3f ms per call, against %.3f ms before (%+.0f%%)",
													   quote_identifier(idxname),
													   cand_columns_sql(&c),
													   e->nq, e->nq == 1 ? "" : "s",
													   (long long) after_calls,
													   mean_after, mean_before,
													   100.0 * (mean_after / mean_before - 1.0)));
		else
			values[j++] = CStringGetTextDatum(psprintf("applied: index %s serves (%s); its %d statement%s did not run since the advice",
													   quote_identifier(idxname),
													   cand_columns_sql(&c),
													   e->nq, e->nq == 1 ? "" : "s"));
		values[j++] = PointerGetDatum(construct_array(qids, e->nq, INT8OID, 8,
													  FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
		values[j++] = Int64GetDatum(calls_now);
		values[j++] = Float8GetDatum(e->est_cost_before);
		values[j++] = Float8GetDatum(e->est_cost_after);
		values[j++] = Float8GetDatum(e->est_improvement);
		values[j++] = Int64GetDatum(index_bytes);
		/* impact_ms: the time the index saved so far (negative: lost) */
		if (mean_after >= 0 && mean_before >= 0)
			values[j++] = Float8GetDatum(after_calls * (mean_before - mean_after));
		else
			nulls[j++] = true;
		values[j++] = BoolGetDatum(true);
		values[j++] = CStringGetTextDatum(idxname);
		if (mean_before >= 0)
			values[j++] = Float8GetDatum(mean_before);
		else
			nulls[j++] = true;
		if (mean_after >= 0)
			values[j++] = Float8GetDatum(mean_after);
		else
			nulls[j++] = true;
		values[j++] = Int64GetDatum(after_calls);
		if (mean_after >= 0 && mean_before > 0)
			values[j++] = Float8GetDatum(1.0 - mean_after / mean_before);
		else
			nulls[j++] = true;
		Assert(j == 20);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	pfree(copy);
}

/*
 * perfguard_index_advice_missing
 *		The 'missing' rows of perfguard.index_advice (see the file header).
 */
Datum
perfguard_index_advice_missing(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	stmtCollect sc;
	qidStats	qs;
	List	   *rows = NIL;
	ListCell   *lc,
			   *lc2;
	MemoryContext keepcxt = CurrentMemoryContext;

	pfg_check_preloaded();
	pfg_scope_flush();
	InitMaterializedSRF(fcinfo, 0);

	memset(&sc, 0, sizeof(sc));
	sc.me = GetUserId();
	sc.all = has_privs_of_role(sc.me, ROLE_PG_READ_ALL_STATS);
	pfg_store_foreach_statement(collect_stmt_cb, &sc);

	/* prove candidates statement by statement */
	foreach(lc, sc.items)
	{
		stmtItem   *it = lfirst(lc);
		analyseArgs a;

		memset(&a, 0, sizeof(a));
		a.text = it->query;
		if (!run_guarded(analyse_guarded_fn, &a, keepcxt))
			continue;
		foreach(lc2, a.result.proven)
		{
			provenIndex *p = lfirst(lc2);
			adviceRow  *r = NULL;
			ListCell   *lc3;

			foreach(lc3, rows)
			{
				adviceRow  *x = lfirst(lc3);

				if (same_columns(&x->cand, &p->cand))
				{
					r = x;
					break;
				}
			}
			if (r == NULL)
			{
				r = palloc0(sizeof(adviceRow));
				r->cand = p->cand;
				r->scan_desc = p->scan_desc;
				rows = lappend(rows, r);
			}
			r->stmts = lappend(r->stmts, it);
			r->before = lappend(r->before, dbl(p->cost_before));
			r->after = lappend(r->after, dbl(p->cost_after));
		}
	}

	/*
	 * Merge a candidate into a longer one that starts with its columns, when
	 * the longer index still proves itself for each of its statements.
	 */
	foreach(lc, rows)
	{
		adviceRow  *shorter = lfirst(lc);

		foreach(lc2, rows)
		{
			adviceRow  *longer = lfirst(lc2);
			List	   *nb = NIL,
					   *na = NIL;
			ListCell   *ls;
			bool		ok = true;

			if (longer->merged || longer == shorter ||
				!is_prefix(&shorter->cand, &longer->cand))
				continue;
			foreach(ls, shorter->stmts)
			{
				costArgs	ca;

				memset(&ca, 0, sizeof(ca));
				ca.text = ((stmtItem *) lfirst(ls))->query;
				ca.cand = &longer->cand;
				if (!run_guarded(cost_guarded_fn, &ca, keepcxt) ||
					ca.before <= 0 ||
					ca.after > ca.before * (1.0 - PFG_MIN_IMPROVEMENT))
				{
					ok = false;
					break;
				}
				nb = lappend(nb, dbl(ca.before));
				na = lappend(na, dbl(ca.after));
			}
			if (!ok)
				continue;
			longer->stmts = list_concat(longer->stmts, shorter->stmts);
			longer->before = list_concat(longer->before, nb);
			longer->after = list_concat(longer->after, na);
			shorter->merged = true;
			break;
		}
	}

	list_sort(rows, cmp_rows);

	/* the counters the remembered advice compares against */
	qid_stats_build(&qs);

	foreach(lc, rows)
	{
		adviceRow  *r = lfirst(lc);
		Datum		values[20];
		bool		nulls[20];
		double		mean_before;
		Datum	   *cols;
		Datum	   *qids;
		int64	   *ids;
		int			i,
					nq;
		double		before,
					after,
					impact;
		int64		calls;
		Relation	rel;
		BlockNumber pages;
		int			height;
		double		tuples;

		if (r->merged)
			continue;
		row_saving(r, &before, &after, &calls, &impact);

		/* the size of the index as the planner saw it, from current stats */
		rel = try_relation_open(r->cand.relid, AccessShareLock);
		if (rel == NULL)
			continue;
		tuples = Max(rel->rd_rel->reltuples, 0);
		relation_close(rel, AccessShareLock);
		estimate_btree_size(tuples, r->cand.keywidth, &pages, &height);

		memset(nulls, 0, sizeof(nulls));
		cols = palloc(sizeof(Datum) * r->cand.ncols);
		for (i = 0; i < r->cand.ncols; i++)
			cols[i] = CStringGetTextDatum(get_attname(r->cand.relid,
													  r->cand.attnos[i], false));
		nq = list_length(r->stmts);
		ids = palloc(sizeof(int64) * nq);
		i = 0;
		foreach(lc2, r->stmts)
			ids[i++] = (int64) ((stmtItem *) lfirst(lc2))->queryid;
		qsort(ids, nq, sizeof(int64), cmp_int64);
		qids = palloc(sizeof(Datum) * nq);
		for (i = 0; i < nq; i++)
			qids[i] = Int64GetDatum(ids[i]);

		i = 0;
		values[i++] = CStringGetTextDatum("missing");
		values[i++] = CStringGetTextDatum(get_namespace_name(get_rel_namespace(r->cand.relid)));
		values[i++] = CStringGetTextDatum(get_rel_name(r->cand.relid));
		nulls[i++] = true;		/* index_name: the server picks one */
		values[i++] = PointerGetDatum(construct_array(cols, r->cand.ncols, TEXTOID,
													  -1, false, TYPALIGN_INT));
		values[i++] = CStringGetTextDatum(cand_ddl(&r->cand));
		values[i++] = CStringGetTextDatum(psprintf("%s; a hypothetical btree index on (%s) lowers the planner's estimated cost of %d statement%s by %.0f%%",
												   r->scan_desc,
												   cand_columns_sql(&r->cand),
												   nq, nq == 1 ? "" : "s",
												   before > 0 ? 100.0 * (1.0 - after / before) : 0.0));
		values[i++] = PointerGetDatum(construct_array(qids, nq, INT8OID, 8,
													  FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
		values[i++] = Int64GetDatum(calls);
		values[i++] = Float8GetDatum(before);
		values[i++] = Float8GetDatum(after);
		values[i++] = Float8GetDatum(before > 0 ? 1.0 - after / before : 0.0);
		values[i++] = Int64GetDatum((int64) pages * BLCKSZ);
		values[i++] = Float8GetDatum(impact);
		/* closed loop: remember it; not applied, as no index serves it */
		mean_before = advice_remember(&r->cand, ids, nq, &qs, before, after);
		values[i++] = BoolGetDatum(false);
		nulls[i++] = true;		/* applied_index */
		if (mean_before >= 0)
			values[i++] = Float8GetDatum(mean_before);
		else
			nulls[i++] = true;
		nulls[i++] = true;		/* mean_ms_after */
		nulls[i++] = true;		/* calls_after */
		nulls[i++] = true;		/* actual_improvement */
		Assert(i == 20);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}

	/* remembered advice whose index now exists */
	advice_emit_applied(rsinfo, sc.all, &qs);
	return (Datum) 0;
}

/*---- perfguard.advise(query) ----*/

typedef struct adviseErrCtx
{
	const char *text;
} adviseErrCtx;

/*
 * advise_error_callback
 *		Point a syntax error's position into the analysed text (not the
 *		calling statement) and say what advise() accepts.
 */
static void
advise_error_callback(void *arg)
{
	adviseErrCtx *ctx = (adviseErrCtx *) arg;
	int			pos = geterrposition();

	if (pos > 0)
	{
		errposition(0);
		internalerrposition(pos);
		internalerrquery(ctx->text);
	}
	if (geterrcode() == ERRCODE_SYNTAX_ERROR)
		errhint("perfguard.advise() takes one SELECT, UPDATE or DELETE statement; write parameters as $1, $2, ...");
	errcontext("statement analysed by perfguard.advise()");
}

/*
 * perfguard_advise
 *		Plan findings and proven index candidates for one statement, without
 *		running it.  Columns: kind, relation, detail, ddl, est_cost_before,
 *		est_cost_after, est_improvement.
 */
Datum
perfguard_advise(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	char	   *qtext;
	const char *p;
	stmtAnalysis res;
	ErrorContextCallback errcb;
	adviseErrCtx ctx;
	ListCell   *lc;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("query must not be null"),
				 errhint("Pass the text of one SELECT, UPDATE or DELETE statement.")));
	qtext = text_to_cstring(PG_GETARG_TEXT_PP(0));
	for (p = qtext; *p && isspace((unsigned char) *p); p++)
		;
	if (*p == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("query must not be empty"),
				 errhint("Pass the text of one SELECT, UPDATE or DELETE statement.")));
	pfg_check_preloaded();
	InitMaterializedSRF(fcinfo, 0);

	ctx.text = qtext;
	errcb.callback = advise_error_callback;
	errcb.arg = &ctx;
	errcb.previous = error_context_stack;
	error_context_stack = &errcb;
	analyse_statement(qtext, true, true, true, &res);
	error_context_stack = errcb.previous;

	foreach(lc, res.findings)
	{
		planFinding *f = lfirst(lc);
		Datum		values[7];
		bool		nulls[7] = {false, false, false, true, false, true, true};

		values[0] = CStringGetTextDatum(f->kind);
		values[1] = CStringGetTextDatum(f->relation);
		values[2] = CStringGetTextDatum(f->detail);
		values[4] = Float8GetDatum(res.cost_before);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	foreach(lc, res.proven)
	{
		provenIndex *pi = lfirst(lc);
		Datum		values[7];
		bool		nulls[7] = {false, false, false, false, false, false, false};
		double		imp = 1.0 - pi->cost_after / pi->cost_before;

		values[0] = CStringGetTextDatum("missing_index");
		values[1] = CStringGetTextDatum(qualified_rel(pi->cand.relid));
		values[2] = CStringGetTextDatum(psprintf("%s; a hypothetical btree index on (%s) lowers the estimated cost by %.0f%%",
												 pi->scan_desc,
												 cand_columns_sql(&pi->cand),
												 100.0 * imp));
		values[3] = CStringGetTextDatum(cand_ddl(&pi->cand));
		values[4] = Float8GetDatum(pi->cost_before);
		values[5] = Float8GetDatum(pi->cost_after);
		values[6] = Float8GetDatum(imp);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	foreach(lc, res.tried)
	{
		char	   *rel = lfirst(lc);
		Datum		values[7];
		bool		nulls[7] = {false, false, false, true, false, true, true};

		values[0] = CStringGetTextDatum("no_index_helps");
		values[1] = CStringGetTextDatum(rel);
		values[2] = CStringGetTextDatum(psprintf("no single btree index on %s lowers the estimated cost by %.0f%% or more",
												 rel, 100.0 * PFG_MIN_IMPROVEMENT));
		values[4] = Float8GetDatum(res.cost_before);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}
