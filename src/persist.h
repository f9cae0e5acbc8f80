/*-------------------------------------------------------------------------
 *
 * persist.h
 *		Stats files: the stamp every perfguard file starts with, and the
 *		write-to-temporary-then-durable-rename / read-then-unlink protocol.
 *
 * Copyright (c) 2026, perfguard developers
 *
 * IDENTIFICATION
 *	  src/persist.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef PFG_PERSIST_H
#define PFG_PERSIST_H

#include <stdio.h>

/*
 * The first bytes of every perfguard file.  A file's own header struct
 * starts with these three fields (in this order), followed by what that
 * file needs.
 */
typedef struct pfgFileStamp
{
	uint32		magic;
	uint32		pg_major;
	uint32		format;
} pfgFileStamp;

extern void pfg_persist_stamp(pfgFileStamp *stamp, uint32 magic,
							  uint32 format);
extern const char *pfg_persist_check(const pfgFileStamp *stamp, uint32 magic,
									 uint32 format, const char *notmine);
extern FILE *pfg_persist_begin_write(const char *tmpfile);
extern void pfg_persist_end_write(FILE *file, const char *tmpfile,
								  const char *path, bool ok);
extern FILE *pfg_persist_begin_read(const char *path);
extern void pfg_persist_end_read(FILE *file, const char *path,
								 const char *what, const char *why);
extern const char *pfg_persist_check_end(FILE *file);

#endif							/* PFG_PERSIST_H */
