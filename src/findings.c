/*-------------------------------------------------------------------------
 *
 * findings.c
 *		The scope findings as the views read them (perfguard._findings_raw:
 *		texts, stored fix, the rule that suppresses each), and the cards of
 *		perfguard.findings built from them (perfguard._scope_cards).
 *
 * A card is one problem: the N+1s after one parent query on one route and
 * the repeating sequences there are one loop, with one fix that merges the
 * relations of all of them (nplusone_fix.c); the duplicates of that loop's
 * lookups fold into its card; every other duplicate and every write loop is
 * a card of its own.  A finding recorded without a fix (by a version that
 * did not store one, or whose backend could not derive it) gets its fix now
 * when it belongs to the current database, and keeps it.  This is done in C
 * because a full store has thousands of findings (one per route and
 * statement), and grouping them in SQL was the slowest part of
 * perfguard.findings; the plan and index cards, a few hundred at most, are
 * built in SQL.  perfguard._waiting() tells which share of the time of an
 * index advice's statements was spent in functions that wait (pg_sleep, an
 * advisory lock): no index makes that faster.
 *
 * Privileges: as every view, texts (and the fixes, which name tables and
 * columns) only for those who may see the statement's text.  Entries are
 * copied out of shared memory first; nothing here holds a lock while it
 * builds tuples or reads the catalogs.
 *
 * Copyright (c) 2026, perfguard developers
 *
 * IDENTIFICATION
 *	  src/findings.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "funcapi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "parser/analyze.h"
#include "parser/parser.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"

#include "fix_text.h"
#include "nplusone_fix.h"
#include "plan_sample.h"
#include "report.h"
#include "scope.h"
#include "store.h"

PG_FUNCTION_INFO_V1(perfguard_findings_raw);
PG_FUNCTION_INFO_V1(perfguard_scope_cards);
PG_FUNCTION_INFO_V1(perfguard_waiting);

static const char *const framework_names[] = {NULL, "django", "rails", "sqlalchemy"};

/* A text column, NULL when empty or hidden. */
#define TEXT_OR_NULL(cond, str) \
	do { \
		if ((cond) && (str)[0] != '\0') \
			values[j++] = CStringGetTextDatum(str); \
		else \
			nulls[j++] = true; \
	} while (0)

/* A statement's text, looked up once per call of _findings_raw. */
typedef struct textCacheKey
{
	Oid			userid;
	Oid			dbid;
	uint64		queryid;
} textCacheKey;

typedef struct textCacheEntry
{
	textCacheKey key;
	char	   *text;			/* NULL when there is none */
} textCacheEntry;

/*
 * cached_text
 *		pfg_store_get_query through a backend-local cache: thousands of
 *		findings (one per route) share a few parents and children.
 */
static char *
cached_text(HTAB *cache, Oid userid, Oid dbid, uint64 queryid)
{
	textCacheKey key;
	textCacheEntry *e;
	bool		found;

	if (queryid == 0)
		return NULL;
	memset(&key, 0, sizeof(key));
	key.userid = userid;
	key.dbid = dbid;
	key.queryid = queryid;
	e = hash_search(cache, &key, HASH_ENTER, &found);
	if (!found)
		e->text = pfg_store_get_query_any(userid, dbid, queryid);
	return e->text;
}

/*
 * findings_raw_more
 *		The columns of _findings_raw added for perfguard.findings: the kind,
 *		the framework, the texts (looked up here, once per finding, rather
 *		than joined against every statement in SQL) and the stored fix.
 *		Returns the next column.
 */
static int
findings_raw_more(pfgFindingEntry *e, bool sees, HTAB *cache, Datum *values,
				  bool *nulls, int j)
{
	char	   *q = sees ? cached_text(cache, e->key.userid, e->key.dbid,
									   e->key.queryid) : NULL;
	char	   *p = sees ? cached_text(cache, e->key.userid, e->key.dbid,
									   e->key.parent_queryid) : NULL;
	bool		fixed = sees && e->fix_state == PFG_FIX_DONE;
	pfgFix	   *f = &e->fix;

	values[j++] = Int32GetDatum(e->key.kind);
	if (e->framework > 0 && e->framework < lengthof(framework_names))
		values[j++] = CStringGetTextDatum(framework_names[(int) e->framework]);
	else
		nulls[j++] = true;
	TEXT_OR_NULL(q != NULL, q ? q : "");
	TEXT_OR_NULL(p != NULL, p ? p : "");
	if (sees && e->nseq > 0)
	{
		Datum		elems[PFG_SEQ_MAX];
		bool		enulls[PFG_SEQ_MAX];
		int			dims[1];
		int			lbs[1] = {1};
		int			k;

		for (k = 0; k < e->nseq; k++)
		{
			char	   *t = cached_text(cache, e->key.userid, e->key.dbid,
										e->seq[k]);

			enulls[k] = (t == NULL);
			elems[k] = t ? CStringGetTextDatum(t) : (Datum) 0;
		}
		dims[0] = e->nseq;
		values[j++] = PointerGetDatum(construct_md_array(elems, enulls, 1, dims, lbs,
														 TEXTOID, -1, false,
														 TYPALIGN_INT));
	}
	else
		nulls[j++] = true;
	/* the fix: NULL fix_found when none is stored (the views derive one) */
	if (fixed)
	{
		values[j++] = BoolGetDatum(f->found);
		values[j++] = BoolGetDatum(f->inferred);
	}
	else
	{
		nulls[j++] = true;
		nulls[j++] = true;
	}
	TEXT_OR_NULL(fixed, f->table_name);
	TEXT_OR_NULL(fixed, f->column_name);
	TEXT_OR_NULL(fixed, f->sql);
	TEXT_OR_NULL(fixed, f->django_select);
	TEXT_OR_NULL(fixed, f->django_prefetch);
	TEXT_OR_NULL(fixed, f->django_extra);
	TEXT_OR_NULL(fixed, f->rails);
	TEXT_OR_NULL(fixed, f->rails_extra);
	TEXT_OR_NULL(fixed, f->sqla);
	TEXT_OR_NULL(fixed, f->sqla_extra);
	return j;
}

/* The suppression rules, by key, for _findings_raw. */
typedef struct ruleEntry
{
	pfgIgnoreKey key;
	pfgIgnoreEntry *rule;
} ruleEntry;

static pfgIgnoreEntry *
rule_probe(HTAB *rules, int kind, uint64 queryid, uint32 route_hash,
		   const char *route)
{
	pfgIgnoreKey key;
	ruleEntry  *r;

	memset(&key, 0, sizeof(key));
	key.kind = kind;
	if (kind != PFG_IGNORE_ROUTE)
		key.queryid = queryid;
	if (kind != PFG_IGNORE_QUERYID)
		key.route_hash = route_hash;
	r = hash_search(rules, &key, HASH_FIND, NULL);
	if (r && kind != PFG_IGNORE_QUERYID && strcmp(r->rule->route, route) != 0)
		return NULL;			/* another route with the same hash */
	return r ? r->rule : NULL;
}

/*
 * rule_of
 *		The rule that suppresses a finding now, or NULL: on its statement (or
 *		a member of its sequence), then on its statement on its route, then
 *		on its route.
 */
static pfgIgnoreEntry *
rule_of(HTAB *rules, const pfgFindingEntry *e)
{
	int			kinds[2] = {PFG_IGNORE_QUERYID, PFG_IGNORE_QUERYID_ROUTE};
	int			k;

	if (hash_get_num_entries(rules) == 0)
		return NULL;
	for (k = 0; k < 2; k++)
	{
		pfgIgnoreEntry *r = rule_probe(rules, kinds[k], e->key.queryid,
									   e->key.route_hash, e->route);
		int			m;

		for (m = 0; r == NULL && e->key.kind == PFG_FIND_SEQUENCE && m < e->nseq; m++)
			r = rule_probe(rules, kinds[k], e->seq[m], e->key.route_hash, e->route);
		if (r)
			return r;
	}
	return rule_probe(rules, PFG_IGNORE_ROUTE, 0, e->key.route_hash, e->route);
}

/* Order of sequence findings, to find the one an N+1 belongs to. */
static int
seq_cmp(const void *a, const void *b)
{
	const pfgFindingKey *x = &(*(pfgFindingEntry *const *) a)->key;
	const pfgFindingKey *y = &(*(pfgFindingEntry *const *) b)->key;

	if (x->queryid != y->queryid)
		return x->queryid < y->queryid ? -1 : 1;
	if (x->dbid != y->dbid)
		return x->dbid < y->dbid ? -1 : 1;
	if (x->userid != y->userid)
		return x->userid < y->userid ? -1 : 1;
	if (x->route_hash != y->route_hash)
		return x->route_hash < y->route_hash ? -1 : 1;
	return 0;
}

static const char *
cmd_name(CmdType cmd)
{
	switch (cmd)
	{
		case CMD_SELECT:
			return "SELECT";
		case CMD_INSERT:
			return "INSERT";
		case CMD_UPDATE:
			return "UPDATE";
		case CMD_DELETE:
			return "DELETE";
		case CMD_MERGE:
			return "MERGE";
		case CMD_UTILITY:
			return "UTILITY";
		default:
			return "OTHER";
	}
}

/* The scope findings and rules of one report call, copied out. */
typedef struct findingsSnap
{
	pfgCollect	entries;		/* pfgFindingEntry */
	pfgCollect	rulecopy;		/* pfgIgnoreEntry */
	HTAB	   *rules;			/* ruleEntry by key */
	HTAB	   *texts;			/* textCacheEntry */
	pfgFindingEntry **seqs;		/* the sequences, sorted by seq_cmp */
	int			nseqs;
	bool		all;			/* the caller sees every text */
	Oid			me;
} findingsSnap;

#define SNAP_ENTRY(snap, i) \
	((pfgFindingEntry *) ((snap)->entries.data + (snap)->entries.entrysize * (i)))

/*
 * snap_take
 *		Flush this backend's open scope, copy the findings and the rules out
 *		of shared memory, and index them.
 */
static void
snap_take(findingsSnap *snap)
{
	HASHCTL		hctl;
	int			i;

	memset(snap, 0, sizeof(*snap));
	snap->entries.entrysize = sizeof(pfgFindingEntry);
	snap->rulecopy.entrysize = sizeof(pfgIgnoreEntry);
	snap->all = pfg_report_sees_all();
	snap->me = GetUserId();
	pfg_scope_flush();
	pfg_store_foreach_finding(pfg_report_collect_cb, &snap->entries);
	pfg_store_foreach_ignore(pfg_report_collect_cb, &snap->rulecopy);

	memset(&hctl, 0, sizeof(hctl));
	hctl.keysize = sizeof(pfgIgnoreKey);
	hctl.entrysize = sizeof(ruleEntry);
	hctl.hcxt = CurrentMemoryContext;
	snap->rules = hash_create("perfguard rules", 64, &hctl,
							  HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	for (i = 0; i < snap->rulecopy.n; i++)
	{
		pfgIgnoreEntry *r = (pfgIgnoreEntry *) (snap->rulecopy.data +
												snap->rulecopy.entrysize * i);
		ruleEntry  *re = hash_search(snap->rules, &r->key, HASH_ENTER, NULL);

		re->rule = r;
	}
	memset(&hctl, 0, sizeof(hctl));
	hctl.keysize = sizeof(textCacheKey);
	hctl.entrysize = sizeof(textCacheEntry);
	hctl.hcxt = CurrentMemoryContext;
	snap->texts = hash_create("perfguard finding texts", 256, &hctl,
							  HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);

	snap->seqs = palloc(sizeof(pfgFindingEntry *) * (snap->entries.n + 1));
	for (i = 0; i < snap->entries.n; i++)
		if (SNAP_ENTRY(snap, i)->key.kind == PFG_FIND_SEQUENCE)
			snap->seqs[snap->nseqs++] = SNAP_ENTRY(snap, i);
	qsort(snap->seqs, snap->nseqs, sizeof(pfgFindingEntry *), seq_cmp);
}

/* The sequence finding an N+1 is a member of, or NULL. */
static pfgFindingEntry *
snap_sequence_of(findingsSnap *snap, const pfgFindingEntry *e)
{
	pfgFindingEntry probe;
	pfgFindingEntry *pp = &probe;
	pfgFindingEntry **hit;

	if (e->key.kind != PFG_FIND_NPLUSONE || e->seq_id == 0 || snap->nseqs == 0)
		return NULL;
	memset(&probe, 0, sizeof(probe.key));
	probe.key.queryid = e->seq_id;
	probe.key.dbid = e->key.dbid;
	probe.key.userid = e->key.userid;
	probe.key.route_hash = e->key.route_hash;
	hit = bsearch(&pp, snap->seqs, snap->nseqs, sizeof(pfgFindingEntry *), seq_cmp);
	return hit ? *hit : NULL;
}

/*
 * Not a to-do: suppressed in-band or by a rule now, or test traffic
 * (perfguard='test') while perfguard.include_test is off.
 */
static bool
snap_suppressed(findingsSnap *snap, const pfgFindingEntry *e)
{
	if ((e->key.ignored & PFG_FINDING_TEST) && !pfg_include_test)
		return true;
	return (e->key.ignored & PFG_FINDING_IGNORED) ||
		rule_of(snap->rules, e) != NULL;
}

/*
 * perfguard_findings_raw
 *		Rows of one kind of scope finding (a pfgFindingKind; the view
 *		perfguard._finding_kinds names them), or of every kind (0); the views
 *		add suggestions.  An unknown kind has no rows.  Each row carries the
 *		texts of its statement, its parent and (a sequence) its members, and
 *		the fix stored with it, for those who may see the statement's text.
 */
Datum
perfguard_findings_raw(PG_FUNCTION_ARGS)
{
	int32		kind = PG_GETARG_INT32(0);
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	findingsSnap snap;
	int			i;

	pfg_check_preloaded();
	InitMaterializedSRF(fcinfo, 0);
	snap_take(&snap);

	for (i = 0; i < snap.entries.n; i++)
	{
		pfgFindingEntry *e = SNAP_ENTRY(&snap, i);
		Datum		values[40];
		bool		nulls[40];
		pfgIgnoreEntry *rule;
		pfgFindingEntry *sq;
		int			j = 0;
		bool		sees = snap.all || e->key.userid == snap.me;

		if (kind != 0 && e->key.kind != kind)
			continue;
		memset(nulls, 0, sizeof(nulls));
		values[j++] = ObjectIdGetDatum(e->key.dbid);
		values[j++] = ObjectIdGetDatum(e->key.userid);
		values[j++] = CStringGetTextDatum(e->route);
		values[j++] = Int64GetDatum((int64) e->key.queryid);
		if (e->key.parent_queryid != 0)
			values[j++] = Int64GetDatum((int64) e->key.parent_queryid);
		else
			nulls[j++] = true;
		values[j++] = CStringGetTextDatum(cmd_name(e->cmdtype));
		values[j++] = Int64GetDatum(e->occurrences);
		values[j++] = Int64GetDatum(e->total_repeats);
		values[j++] = Int64GetDatum(e->max_repeats);
		values[j++] = Int64GetDatum(e->max_distinct);
		values[j++] = Int64GetDatum(e->total_duplicates);
		values[j++] = Int64GetDatum(e->max_duplicates);
		values[j++] = Float8GetDatum(e->wasted_ms);
		values[j++] = TimestampTzGetDatum(e->last_seen);
		if (sees && e->example_params[0] != '\0')
			values[j++] = CStringGetTextDatum(e->example_params);
		else
			nulls[j++] = true;
		values[j++] = BoolGetDatum((e->key.ignored & PFG_FINDING_IGNORED) != 0);
		if (e->seq_id != 0)
			values[j++] = Int64GetDatum((int64) e->seq_id);
		else
			nulls[j++] = true;
		if (e->nseq > 0)
		{
			Datum		elems[PFG_SEQ_MAX];
			int			k;

			for (k = 0; k < e->nseq; k++)
				elems[k] = Int64GetDatum((int64) e->seq[k]);
			values[j++] = PointerGetDatum(construct_array(elems, e->nseq, INT8OID,
														  8, FLOAT8PASSBYVAL,
														  TYPALIGN_DOUBLE));
		}
		else
			nulls[j++] = true;
		values[j++] = BoolGetDatum((e->key.ignored & PFG_FINDING_TEST) != 0);
		j = findings_raw_more(e, sees, snap.texts, values, nulls, j);
		/* an N+1 in a sequence: the sequence's members */
		sq = snap_sequence_of(&snap, e);
		if (sq && sq->nseq > 0)
		{
			Datum		elems[PFG_SEQ_MAX];
			int			k;

			for (k = 0; k < sq->nseq; k++)
				elems[k] = Int64GetDatum((int64) sq->seq[k]);
			values[j++] = PointerGetDatum(construct_array(elems, sq->nseq,
														  INT8OID, 8,
														  FLOAT8PASSBYVAL,
														  TYPALIGN_DOUBLE));
		}
		else
			nulls[j++] = true;
		/* the rule that suppresses it now (rules are not in its key) */
		rule = rule_of(snap.rules, e);
		if (rule)
		{
			values[j++] = CStringGetTextDatum(rule->key.kind == PFG_IGNORE_QUERYID ? "queryid" :
											  rule->key.kind == PFG_IGNORE_ROUTE ? "route" :
											  "queryid_route");
			TEXT_OR_NULL(true, rule->reason);
		}
		else
		{
			nulls[j++] = true;
			nulls[j++] = true;
		}
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}


/*---- the cards of perfguard.findings ----*/

/* One loop: the N+1s and sequences after one parent on one route. */
typedef struct loopKey
{
	Oid			dbid;
	uint32		route_hash;
	uint64		pkey;			/* the parent's query id, 0 when unknown */
} loopKey;

typedef struct loopMember
{
	uint64		queryid;
	char	   *text;
	double		wasted_ms;		/* of the finding it came from */
	int			ord;			/* its place in that finding */
} loopMember;

typedef struct loopCard
{
	loopKey		key;			/* must be first */
	const char *route;
	char	   *parent_query;
	bool		has_sequence;
	bool		visible;
	bool		inferred;
	int			framework;
	int64		max_repeats;
	int64		max_distinct;
	int64		dups;			/* duplicates of its lookups, folded in */
	double		wasted_ms;
	TimestampTz last_seen;
	uint64		top_queryid;
	double		top_wasted;
	char	   *column;
	pfgFixMerge *merge;
	List	   *members;		/* loopMember * */
} loopCard;

/* A lookup of a loop, for the duplicates that fold into it. */
typedef struct memberKey
{
	Oid			dbid;
	uint32		route_hash;
	uint64		queryid;
} memberKey;

typedef struct memberEntry
{
	memberKey	key;
	loopCard   *card;
} memberEntry;

/* A reported sequence, for the N+1s inside it (shown by its card). */
typedef struct seqKey
{
	Oid			dbid;
	Oid			userid;
	uint32		route_hash;
	uint64		seq_id;
} seqKey;

/*
 * finding_fix
 *		The fix of an N+1 or a sequence: the stored one, else, for a finding
 *		of the current database whose texts the caller sees, derived now and
 *		stored (once).  A zeroed fix (the generic one) otherwise.
 */
static void
finding_fix(findingsSnap *snap, pfgFindingEntry *e, bool sees,
			const char *parent, const char *const *texts, int ntexts,
			pfgFix *fix)
{
	memset(fix, 0, sizeof(pfgFix));
	if (!sees)
		return;
	if (e->fix_state == PFG_FIX_DONE)
	{
		memcpy(fix, &e->fix, sizeof(pfgFix));
		return;
	}
	if (e->key.dbid != MyDatabaseId || ntexts == 0 || texts[0] == NULL)
		return;
	(void) pfg_fix_derive(parent, texts, ntexts, PFG_FW_NONE, fix);
	pfg_store_set_finding_fix(&e->key, fix);
}

static int
member_cmp(const void *a, const void *b)
{
	const loopMember *x = *(loopMember *const *) a;
	const loopMember *y = *(loopMember *const *) b;

	if (x->wasted_ms != y->wasted_ms)
		return x->wasted_ms > y->wasted_ms ? -1 : 1;
	return x->ord - y->ord;
}

/* The first 80 characters of a parent query, for the detail. */
static char *
parent_of(const char *parent)
{
	int			n;

	if (parent == NULL)
		return pstrdup("an unknown parent");
	n = pg_mbstrlen(parent) > 80 ? pg_mbcharcliplen(parent, strlen(parent), 80) :
		(int) strlen(parent);
	return pnstrdup(parent, n);
}

/* Output columns of perfguard._scope_cards(). */
#define CARD_COLS 12

static void
put_card(ReturnSetInfo *rsinfo, const char *category, const char *route,
		 uint64 queryid, const char *query, const char *detail,
		 const char *suggestion, double impact_ms, TimestampTz last_seen,
		 int framework, bool inferred, List *queryids, Oid dbid)
{
	Datum		values[CARD_COLS];
	bool		nulls[CARD_COLS];
	int			j = 0;

	memset(nulls, 0, sizeof(nulls));
	values[j++] = CStringGetTextDatum(category);
	TEXT_OR_NULL(route != NULL, route ? route : "");
	values[j++] = Int64GetDatum((int64) queryid);
	TEXT_OR_NULL(query != NULL, query ? query : "");
	values[j++] = CStringGetTextDatum(detail);
	TEXT_OR_NULL(suggestion != NULL, suggestion ? suggestion : "");
	values[j++] = Float8GetDatum(impact_ms);
	values[j++] = TimestampTzGetDatum(last_seen);
	if (framework > 0 && framework < lengthof(framework_names))
		values[j++] = CStringGetTextDatum(framework_names[framework]);
	else
		nulls[j++] = true;
	values[j++] = BoolGetDatum(inferred);
	{
		int			n = list_length(queryids);
		Datum	   *elems = palloc(sizeof(Datum) * (n + 1));
		ListCell   *lc;
		int			k = 0;

		foreach(lc, queryids)
			elems[k++] = Int64GetDatum(*(int64 *) lfirst(lc));
		values[j++] = PointerGetDatum(construct_array(elems, n, INT8OID, 8,
													  FLOAT8PASSBYVAL,
													  TYPALIGN_DOUBLE));
	}
	values[j++] = ObjectIdGetDatum(dbid);
	Assert(j == CARD_COLS);
	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
}

static List *
one_queryid(uint64 queryid)
{
	int64	   *q = palloc(sizeof(int64));

	*q = (int64) queryid;
	return list_make1(q);
}

/*
 * add_to_loop
 *		Account an N+1 or a sequence finding to its loop's card.
 */
static void
add_to_loop(findingsSnap *snap, HTAB *loops, HTAB *members,
			pfgFindingEntry *e)
{
	bool		sees = snap->all || e->key.userid == snap->me;
	loopKey		key;
	loopCard   *card;
	bool		found;
	char	   *parent = sees ? cached_text(snap->texts, e->key.userid, e->key.dbid,
											e->key.parent_queryid) : NULL;
	const char *texts[PFG_SEQ_MAX];
	uint64		qids[PFG_SEQ_MAX];
	int			n = 0;
	int			k;
	pfgFix		fix;

	if (e->key.kind == PFG_FIND_SEQUENCE)
	{
		for (k = 0; k < e->nseq; k++)
		{
			qids[n] = e->seq[k];
			texts[n++] = sees ? cached_text(snap->texts, e->key.userid,
											e->key.dbid, e->seq[k]) : NULL;
		}
	}
	else
	{
		qids[n] = e->key.queryid;
		texts[n++] = sees ? cached_text(snap->texts, e->key.userid,
										e->key.dbid, e->key.queryid) : NULL;
	}

	memset(&key, 0, sizeof(key));
	key.dbid = e->key.dbid;
	key.route_hash = e->key.route_hash;
	key.pkey = e->key.parent_queryid;
	card = hash_search(loops, &key, HASH_ENTER, &found);
	if (!found)
	{
		memset((char *) card + sizeof(loopKey), 0, sizeof(loopCard) - sizeof(loopKey));
		card->route = pstrdup(e->route);
		card->merge = pfg_fix_merge_start();
		card->visible = true;
		card->top_wasted = -1;
	}
	if (card->parent_query == NULL && parent)
		card->parent_query = parent;
	card->has_sequence |= (e->key.kind == PFG_FIND_SEQUENCE);
	card->visible &= sees;
	card->max_repeats = Max(card->max_repeats, e->max_repeats);
	card->max_distinct = Max(card->max_distinct, e->max_distinct);
	card->wasted_ms += e->wasted_ms;
	card->last_seen = Max(card->last_seen, e->last_seen);
	card->framework = Max(card->framework, e->framework);
	if (e->wasted_ms > card->top_wasted)
	{
		card->top_wasted = e->wasted_ms;
		card->top_queryid = e->key.queryid;
	}

	finding_fix(snap, e, sees, parent, texts, n, &fix);
	card->inferred |= fix.inferred;
	if (e->key.kind == PFG_FIND_NPLUSONE && card->column == NULL &&
		fix.column_name[0])
		card->column = pstrdup(fix.column_name);
	pfg_fix_merge_add(card->merge, &fix);

	for (k = 0; k < n; k++)
	{
		ListCell   *lc;
		loopMember *m = NULL;
		memberKey	mk;
		memberEntry *me;

		foreach(lc, card->members)
			if (((loopMember *) lfirst(lc))->queryid == qids[k])
				m = lfirst(lc);
		if (m == NULL)
		{
			m = palloc0(sizeof(loopMember));
			m->queryid = qids[k];
			m->text = (char *) texts[k];
			m->wasted_ms = -1;
			card->members = lappend(card->members, m);
		}
		if (e->wasted_ms > m->wasted_ms)
		{
			m->wasted_ms = e->wasted_ms;
			m->ord = k;
		}
		memset(&mk, 0, sizeof(mk));
		mk.dbid = e->key.dbid;
		mk.route_hash = e->key.route_hash;
		mk.queryid = qids[k];
		me = hash_search(members, &mk, HASH_ENTER, &found);
		if (!found)
			me->card = card;
	}
}

/*
 * perfguard_scope_cards
 *		perfguard._scope_cards(): the cards of perfguard.findings that come
 *		from the request scopes (see the file header), not ranked; the view
 *		adds the plan and index cards, the databases' names and the rank.
 */
Datum
perfguard_scope_cards(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	findingsSnap snap;
	HASHCTL		hctl;
	HTAB	   *loops;
	HTAB	   *members;
	HTAB	   *reported;
	HASH_SEQ_STATUS status;
	loopCard   *card;
	bool	   *suppressed;
	int			i;

	pfg_check_preloaded();
	InitMaterializedSRF(fcinfo, 0);
	snap_take(&snap);

	memset(&hctl, 0, sizeof(hctl));
	hctl.keysize = sizeof(loopKey);
	hctl.entrysize = sizeof(loopCard);
	hctl.hcxt = CurrentMemoryContext;
	loops = hash_create("perfguard loops", 256, &hctl,
						HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	hctl.keysize = sizeof(memberKey);
	hctl.entrysize = sizeof(memberEntry);
	members = hash_create("perfguard loop members", 256, &hctl,
						  HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	hctl.keysize = sizeof(seqKey);
	hctl.entrysize = sizeof(seqKey);
	reported = hash_create("perfguard reported sequences", 64, &hctl,
						   HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);

	/* what is suppressed, and which sequences are reported */
	suppressed = palloc(sizeof(bool) * (snap.entries.n + 1));
	for (i = 0; i < snap.entries.n; i++)
	{
		pfgFindingEntry *e = SNAP_ENTRY(&snap, i);

		suppressed[i] = snap_suppressed(&snap, e);
		if (!suppressed[i] && e->key.kind == PFG_FIND_SEQUENCE)
		{
			seqKey		sk;

			memset(&sk, 0, sizeof(sk));
			sk.dbid = e->key.dbid;
			sk.userid = e->key.userid;
			sk.route_hash = e->key.route_hash;
			sk.seq_id = e->key.queryid;
			(void) hash_search(reported, &sk, HASH_ENTER, NULL);
		}
	}

	/* loops: the N+1s outside a reported sequence, and the sequences */
	for (i = 0; i < snap.entries.n; i++)
	{
		pfgFindingEntry *e = SNAP_ENTRY(&snap, i);

		if (suppressed[i])
			continue;
		if (e->key.kind == PFG_FIND_NPLUSONE && e->seq_id != 0)
		{
			seqKey		sk;

			memset(&sk, 0, sizeof(sk));
			sk.dbid = e->key.dbid;
			sk.userid = e->key.userid;
			sk.route_hash = e->key.route_hash;
			sk.seq_id = e->seq_id;
			if (hash_search(reported, &sk, HASH_FIND, NULL) != NULL)
				continue;		/* its sequence's card shows it */
		}
		if (e->key.kind == PFG_FIND_NPLUSONE || e->key.kind == PFG_FIND_SEQUENCE)
			add_to_loop(&snap, loops, members, e);
	}

	/* duplicates (folded into their loop, else a card) and write loops */
	for (i = 0; i < snap.entries.n; i++)
	{
		pfgFindingEntry *e = SNAP_ENTRY(&snap, i);
		bool		sees = snap.all || e->key.userid == snap.me;
		char	   *q;

		if (suppressed[i] ||
			(e->key.kind != PFG_FIND_DUPLICATE && e->key.kind != PFG_FIND_WRITELOOP))
			continue;
		q = sees ? cached_text(snap.texts, e->key.userid, e->key.dbid,
							   e->key.queryid) : NULL;
		if (e->key.kind == PFG_FIND_DUPLICATE)
		{
			memberKey	mk;
			memberEntry *me;

			memset(&mk, 0, sizeof(mk));
			mk.dbid = e->key.dbid;
			mk.route_hash = e->key.route_hash;
			mk.queryid = e->key.queryid;
			me = hash_search(members, &mk, HASH_FIND, NULL);
			if (me)
			{
				me->card->dups += e->total_duplicates;
				continue;
			}
			put_card(rsinfo, "duplicate", e->route, e->key.queryid, q,
					 psprintf("same statement and parameters up to %lld times in one request",
							  (long long) e->max_duplicates),
					 psprintf("the same query with the same parameters ran %lld times in one request: "
							  "run it once and reuse the result (a variable, Django's cached_property "
							  "or the cache framework, Rails memoization), or hoist it out of the loop",
							  (long long) e->max_duplicates),
					 e->wasted_ms, e->last_seen, e->framework, false,
					 one_queryid(e->key.queryid), e->key.dbid);
		}
		else
		{
			const char *fix;

			switch (e->cmdtype)
			{
				case CMD_INSERT:
					fix = "one INSERT per row: use a multi-row INSERT ... VALUES (...), (...) or COPY / Django: bulk_create(objs, batch_size=500) / Rails: insert_all";
					break;
				case CMD_UPDATE:
					fix = "one UPDATE per row: use one UPDATE ... FROM (VALUES ...) or UPDATE ... WHERE id = ANY($1) / Django: bulk_update(objs, fields) or queryset.update() / Rails: update_all or upsert_all";
					break;
				case CMD_DELETE:
					fix = "one DELETE per row: use DELETE ... WHERE id = ANY($1) / Django: queryset.delete() / Rails: delete_all";
					break;
				default:
					fix = "one statement per row: batch the rows into one statement";
					break;
			}
			put_card(rsinfo, "write_loop", e->route, e->key.queryid, q,
					 psprintf("%s ran %lld times row by row in one request",
							  cmd_name(e->cmdtype), (long long) e->max_repeats),
					 fix, e->wasted_ms, e->last_seen, e->framework, false,
					 one_queryid(e->key.queryid), e->key.dbid);
		}
	}

	/* the loops' cards */
	hash_seq_init(&status, loops);
	while ((card = hash_seq_search(&status)) != NULL)
	{
		int			nm = list_length(card->members);
		loopMember **ms = palloc(sizeof(loopMember *) * (nm + 1));
		StringInfoData query;
		StringInfoData detail;
		List	   *qids = NIL;
		bool		any_text = false;
		bool		loop = card->has_sequence || nm > 1;
		ListCell   *lc;
		int			k = 0;

		foreach(lc, card->members)
			ms[k++] = lfirst(lc);
		qsort(ms, nm, sizeof(loopMember *), member_cmp);
		initStringInfo(&query);
		for (k = 0; k < nm; k++)
		{
			int64	   *q = palloc(sizeof(int64));

			*q = (int64) ms[k]->queryid;
			qids = lappend(qids, q);
			if (ms[k]->text)
			{
				appendStringInfo(&query, "%s%s", any_text ? "\n" : "", ms[k]->text);
				any_text = true;
			}
		}
		initStringInfo(&detail);
		if (loop)
			appendStringInfo(&detail, "%d queries repeated %lld times in one request after %s",
							 nm, (long long) card->max_repeats,
							 parent_of(card->parent_query));
		else
			appendStringInfo(&detail, "ran %lld times in one request (%lld distinct parameter sets) after %s",
							 (long long) card->max_repeats,
							 (long long) card->max_distinct,
							 parent_of(card->parent_query));
		if (card->dups > 0)
			appendStringInfo(&detail, "; %lld of these lookups repeated one with the same parameters (those duplicates are this loop's)",
							 (long long) card->dups);
		put_card(rsinfo, loop ? "n_plus_one_sequence" : "n_plus_one",
				 card->route, loop && card->has_sequence ? card->top_queryid :
				 ms[0]->queryid,
				 any_text ? query.data : NULL, detail.data,
				 card->visible ?
				 pfg_fix_merge_compose(card->merge, card->framework,
									   card->inferred, card->column) : NULL,
				 card->wasted_ms, card->last_seen, card->framework,
				 card->inferred, qids, card->key.dbid);
	}
	return (Datum) 0;
}

/*---- statements that wait ----*/

/* The statements of the current database with given query ids. */
typedef struct waitingCtx
{
	const int64 *qids;			/* sorted */
	int			nqids;
	pfgStmtKey *found;			/* preallocated: no palloc under the lock */
	double	   *total_ms;
	int			nfound;
	int			max;
} waitingCtx;

static int
qid_cmp(const void *a, const void *b)
{
	int64		x = *(const int64 *) a;
	int64		y = *(const int64 *) b;

	return (x > y) - (x < y);
}

static void
waiting_cb(const void *entry, void *arg)
{
	const pfgStmtEntry *e = (const pfgStmtEntry *) entry;
	waitingCtx *c = (waitingCtx *) arg;
	int64		q = (int64) e->key.queryid;

	if (c->nfound < c->max && e->key.dbid == MyDatabaseId &&
		e->query[0] != '\0' &&
		bsearch(&q, c->qids, c->nqids, sizeof(int64), qid_cmp) != NULL)
	{
		c->found[c->nfound] = e->key;
		c->total_ms[c->nfound] = e->counters.total_ms;
		c->nfound++;
	}
}

typedef struct waitArgs
{
	const char *text;
	const char *what;
} waitArgs;

/* Analyse a normalised text and look for a waiting function.  May ERROR. */
static void
wait_of_text(void *arg)
{
	waitArgs   *a = (waitArgs *) arg;
	List	   *raw = raw_parser(a->text, RAW_PARSE_DEFAULT);
	Oid		   *ptypes = NULL;
	int			nparams = 0;
	Query	   *q;

	if (list_length(raw) != 1)
		return;
	q = parse_analyze_varparams(linitial_node(RawStmt, raw), a->text,
								&ptypes, &nparams, NULL);
	a->what = pfg_plan_wait_function_in(q);
}

/*
 * perfguard_waiting
 *		perfguard._waiting(queryids bigint[]): (wait_what text, wait_share
 *		float8): of the time (total_ms) of the statements of the current
 *		database with these query ids, the share spent in statements that
 *		call a function that waits (pg_sleep, an advisory lock), and the
 *		first such function; (NULL, 0) when none does.  The texts are
 *		re-analysed here (the index advice calls it once per row when it is
 *		computed, not per read); a text that does not analyse counts as not
 *		waiting.
 */
Datum
perfguard_waiting(PG_FUNCTION_ARGS)
{
	ArrayType  *arr;
	Datum	   *elems;
	bool	   *enulls;
	int64	   *qids;
	int			n;
	int			i;
	waitingCtx	c;
	const char *what = NULL;
	double		all = 0,
				waiting = 0;
	TupleDesc	tupdesc;
	Datum		values[2];
	bool		nulls[2] = {true, false};

	pfg_check_preloaded();
	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	memset(&c, 0, sizeof(c));
	if (!PG_ARGISNULL(0))
	{
		arr = PG_GETARG_ARRAYTYPE_P(0);
		if (ARR_NDIM(arr) > 1)
			ereport(ERROR,
					(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
					 errmsg("queryids must be a one-dimensional array")));
		deconstruct_array(arr, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE,
						  &elems, &enulls, &n);
		qids = palloc(sizeof(int64) * (n + 1));
		for (i = 0; i < n; i++)
			if (!enulls[i])
				qids[c.nqids++] = DatumGetInt64(elems[i]);
		qsort(qids, c.nqids, sizeof(int64), qid_cmp);
		c.qids = qids;
	}
	if (c.nqids > 0)
	{
		c.max = 64;
		c.found = palloc(sizeof(pfgStmtKey) * c.max);
		c.total_ms = palloc(sizeof(double) * c.max);
		pfg_store_foreach_statement(waiting_cb, &c);
	}
	for (i = 0; i < c.nfound; i++)
	{
		waitArgs	a;

		a.text = pfg_store_get_query(c.found[i].userid, c.found[i].dbid,
									 c.found[i].queryid, c.found[i].toplevel);
		a.what = NULL;
		all += c.total_ms[i];
		if (a.text != NULL &&
			pfg_report_guarded(wait_of_text, &a, CurrentMemoryContext) &&
			a.what != NULL)
		{
			waiting += c.total_ms[i];
			if (what == NULL)
				what = a.what;
		}
	}
	if (what != NULL)
	{
		values[0] = CStringGetTextDatum(what);
		nulls[0] = false;
	}
	values[1] = Float8GetDatum(all > 0 ? waiting / all : 0);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}
