/*-------------------------------------------------------------------------
 *
 * table.c
 *		The partitioned clock-sweep hash table in shared memory that every
 *		perfguard table (statements, findings, requests, errors, rules) is
 *		made of.
 *
 * Layout.  A table is a fixed array of slots split into PFG_NPARTS
 * partitions.  A key's hash picks its partition; inside a partition the
 * slots are chained from a bucket array.  Each partition has its own LWLock,
 * its own free list and its own clock hand, so creating or evicting an
 * entry never touches another partition and never needs a global lock.
 * Nothing is allocated after start-up: when a partition is full, the clock
 * hand sweeps that partition alone (usage counts decay by one per pass, an
 * entry whose count is zero is the victim), so the longest time any lock is
 * held is bounded by the partition size, not by the table.
 *
 * Lock protocol (the caller's side is documented in store.c):
 *	- lookup: the partition LWLock in either mode;
 *	- insert, remove, evict: the partition LWLock exclusively;
 *	- the counters of an entry: its slot's spinlock;
 *	- reset: each partition lock exclusively in turn;
 *	- foreach: each partition lock shared in turn, entries copied under
 *	  their spinlock.
 * Nothing here can ERROR while a lock is held, and nothing here touches the
 * catalogs.  The usage counts are hints, updated without a lock.
 *
 * Copyright (c) 2026, perfguard developers
 *
 * IDENTIFICATION
 *	  src/table.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "storage/shmem.h"

#include "table.h"

static void table_clear_partition(pfgTable *t, int part);

static int
table_per_part(int capacity)
{
	/*
	 * Round down, so that a table never holds more entries than its
	 * capacity (perfguard.info promises entries <= max_entries).
	 */
	return Max(capacity / PFG_NPARTS, 1);
}

static int
table_nbuckets(int capacity)
{
	int			n = 1;

	while (n < table_per_part(capacity) * 2)
		n <<= 1;
	return n;
}

/*
 * pfg_table_shmem_size
 *		Shared memory a table of "capacity" entries of "entrysize" needs.
 */
Size
pfg_table_shmem_size(int capacity, Size entrysize)
{
	Size		size;
	Size		slotsize = PFG_SLOT_HDR + MAXALIGN(entrysize);

	size = MAXALIGN(sizeof(pfgTableShared));
	size = add_size(size, MAXALIGN(mul_size(sizeof(int32),
											mul_size(PFG_NPARTS, table_nbuckets(capacity)))));
	size = add_size(size, mul_size(slotsize,
								   mul_size(PFG_NPARTS, table_per_part(capacity))));
	return size;
}

/*
 * pfg_table_attach
 *		Set up the local handle of a table at "base" (pfg_table_shmem_size
 *		bytes); initialise the shared part when "init".  Evictions bump
 *		"dropped".
 */
void
pfg_table_attach(pfgTable *t, char *base, bool init, int capacity,
				 Size keysize, Size entrysize, LWLockPadded *locks,
				 pg_atomic_uint64 *dropped)
{
	int			nb = table_nbuckets(capacity);

	t->sh = (pfgTableShared *) base;
	t->buckets = (int32 *) (base + MAXALIGN(sizeof(pfgTableShared)));
	t->slots = (char *) t->buckets +
		MAXALIGN(sizeof(int32) * PFG_NPARTS * nb);
	t->locks = locks;
	t->dropped = dropped;

	if (init)
	{
		int			p;

		t->sh->per_part = table_per_part(capacity);
		t->sh->nbuckets = nb;
		t->sh->entrysize = entrysize;
		t->sh->keysize = keysize;
		t->sh->slotsize = PFG_SLOT_HDR + MAXALIGN(entrysize);
		for (p = 0; p < PFG_NPARTS; p++)
		{
			int			i;

			for (i = 0; i < t->sh->per_part; i++)
				SpinLockInit(&pfg_table_slot(t, p, i)->mutex);
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
		pfgSlot    *s = pfg_table_slot(t, part, i);

		s->inuse = 0;
		s->usage = 0;
		s->next = (i + 1 < t->sh->per_part) ? i + 1 : -1;
	}
	pp->freelist = (t->sh->per_part > 0) ? 0 : -1;
	pp->nused = 0;
	pp->hand = 0;
}

/*
 * table_unlink
 *		Take slot "idx" of "part" out of its bucket chain and put it on the
 *		free list.  Caller holds the partition lock exclusively.
 */
static void
table_unlink(pfgTable *t, int part, int idx)
{
	pfgSlot    *s = pfg_table_slot(t, part, idx);
	pfgPartition *pp = &t->sh->parts[part];
	int32	   *link = &t->buckets[part * t->sh->nbuckets +
								   pfg_table_bucket(t, s->hash)];

	while (*link != idx)
		link = &pfg_table_slot(t, part, *link)->next;
	*link = s->next;
	s->inuse = 0;
	s->next = pp->freelist;
	pp->freelist = idx;
	pp->nused--;
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
		pfgSlot    *s = pfg_table_slot(t, part, idx);

		pp->hand = (idx + 1) % t->sh->per_part;
		if (!s->inuse)
			continue;
		if (s->usage > 0)
		{
			s->usage--;
			continue;
		}
		table_unlink(t, part, idx);
		pg_atomic_fetch_add_u64(t->dropped, 1);
		return;
	}
}

/*
 * pfg_table_insert_raw
 *		Create the entry for "key", evicting within the partition if needed.
 *		Only the key is written: the rest keeps whatever the slot held, for
 *		callers that initialise large entries themselves.  Caller holds the
 *		partition lock exclusively and has checked that the key is absent.
 */
void *
pfg_table_insert_raw(pfgTable *t, const void *key, uint32 hash)
{
	int			part = pfg_table_part(hash);
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
	s = pfg_table_slot(t, part, idx);
	pp->freelist = s->next;

	bucket = &t->buckets[part * t->sh->nbuckets + pfg_table_bucket(t, hash)];
	s->hash = hash;
	s->inuse = 1;
	s->usage = 1;
	s->next = *bucket;
	*bucket = idx;
	pp->nused++;

	entry = pfg_slot_entry(s);
	memcpy(entry, key, t->sh->keysize);
	return entry;
}

/*
 * pfg_table_insert
 *		pfg_table_insert_raw, with the entry zeroed except for its key.
 */
void *
pfg_table_insert(pfgTable *t, const void *key, uint32 hash)
{
	char	   *entry = pfg_table_insert_raw(t, key, hash);

	if (entry)
		memset(entry + t->sh->keysize, 0, t->sh->entrysize - t->sh->keysize);
	return entry;
}

/*
 * pfg_table_remove
 *		Remove the entry with "key"; false when there was none.  Caller holds
 *		the partition lock exclusively.
 */
bool
pfg_table_remove(pfgTable *t, const void *key, uint32 hash)
{
	int			part = pfg_table_part(hash);
	int32		idx = t->buckets[part * t->sh->nbuckets + pfg_table_bucket(t, hash)];

	while (idx >= 0)
	{
		pfgSlot    *s = pfg_table_slot(t, part, idx);

		if (s->hash == hash && memcmp(pfg_slot_entry(s), key, t->sh->keysize) == 0)
		{
			table_unlink(t, part, idx);
			return true;
		}
		idx = s->next;
	}
	return false;
}

/*
 * pfg_table_upsert
 *		Find or create the entry for "key" and return it with its partition
 *		lock held (shared if it existed, exclusive if it was created;
 *		*lock_out tells which lock to release).  Returns NULL, with no lock
 *		held, when the table has no room at all.
 */
void *
pfg_table_upsert(pfgTable *t, const void *key, LWLock **lock_out, bool *created)
{
	uint32		hash = pfg_table_hash(key, t->sh->keysize);
	LWLock	   *lock = pfg_table_lock(t, hash);
	void	   *entry;

	*created = false;
	LWLockAcquire(lock, LW_SHARED);
	entry = pfg_table_lookup(t, key, hash);
	if (entry == NULL)
	{
		LWLockRelease(lock);
		LWLockAcquire(lock, LW_EXCLUSIVE);
		entry = pfg_table_lookup(t, key, hash);
		if (entry == NULL)
		{
			entry = pfg_table_insert(t, key, hash);
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
 * pfg_table_recheck
 *		"entry" is where an entry with "key" was found earlier by this
 *		backend: return it with its partition lock held in "mode" if it
 *		still holds that key (it may have been evicted or reset since), else
 *		NULL with no lock held.  Saves the hash and the chain walk when a
 *		caller updates the same entry over and over.
 */
void *
pfg_table_recheck(pfgTable *t, void *entry, const void *key, LWLockMode mode,
				  LWLock **lock_out)
{
	pfgSlot    *s = (pfgSlot *) ((char *) entry - PFG_SLOT_HDR);
	Size		idx = ((char *) s - t->slots) / t->sh->slotsize;
	LWLock	   *lock = &t->locks[idx / t->sh->per_part].lock;

	LWLockAcquire(lock, mode);
	if (s->inuse && memcmp(entry, key, t->sh->keysize) == 0)
	{
		*lock_out = lock;
		return entry;
	}
	LWLockRelease(lock);
	return NULL;
}

/*
 * pfg_table_foreach
 *		Call cb on a private copy of every entry, partition by partition,
 *		with the partition lock held in shared mode.  The copy is taken under
 *		the entry spinlock; cb runs while the LWLock is held, so it must only
 *		copy (no ERROR, no catalog access).
 */
void
pfg_table_foreach(pfgTable *t, pfg_entry_cb cb, void *arg)
{
	char	   *copy = palloc(t->sh->entrysize);
	int			p;

	for (p = 0; p < PFG_NPARTS; p++)
	{
		int			i;

		LWLockAcquire(&t->locks[p].lock, LW_SHARED);
		for (i = 0; i < t->sh->per_part; i++)
		{
			pfgSlot    *s = pfg_table_slot(t, p, i);

			if (!s->inuse)
				continue;
			SpinLockAcquire(&s->mutex);
			memcpy(copy, pfg_slot_entry(s), t->sh->entrysize);
			SpinLockRelease(&s->mutex);
			cb(copy, arg);
		}
		LWLockRelease(&t->locks[p].lock);
	}
	pfree(copy);
}

/*
 * pfg_table_scan
 *		Call cb on every entry of partition "part" in place (not a copy); an
 *		entry for which it returns true is removed.  Returns how many were
 *		removed.  Caller holds the partition lock exclusively; cb must not
 *		ERROR.
 */
int
pfg_table_scan(pfgTable *t, int part, pfg_visit_cb cb, void *arg)
{
	int			i;
	int			removed = 0;

	for (i = 0; i < t->sh->per_part; i++)
	{
		pfgSlot    *s = pfg_table_slot(t, part, i);

		if (s->inuse && cb(pfg_slot_entry(s), arg))
		{
			table_unlink(t, part, i);
			removed++;
		}
	}
	return removed;
}

/*
 * pfg_table_reset
 *		Empty the table, taking each partition lock exclusively in turn.
 */
void
pfg_table_reset(pfgTable *t)
{
	int			p;

	for (p = 0; p < PFG_NPARTS; p++)
	{
		LWLockAcquire(&t->locks[p].lock, LW_EXCLUSIVE);
		table_clear_partition(t, p);
		LWLockRelease(&t->locks[p].lock);
	}
}

/*
 * pfg_table_clear
 *		Empty the table without locking: only while nobody else can see it
 *		(start-up, in the postmaster).
 */
void
pfg_table_clear(pfgTable *t)
{
	int			p;

	for (p = 0; p < PFG_NPARTS; p++)
		table_clear_partition(t, p);
}

/*
 * pfg_table_count
 *		Entries in use (each partition's count read without a lock).
 */
int64
pfg_table_count(pfgTable *t)
{
	int64		n = 0;
	int			p;

	for (p = 0; p < PFG_NPARTS; p++)
		n += t->sh->parts[p].nused; /* an int32 read: atomic enough */
	return n;
}
