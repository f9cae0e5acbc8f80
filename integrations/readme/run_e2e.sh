#!/bin/bash
#
# integrations/readme/run_e2e.sh: every code example in README.md runs (or
# at least parses), so the README cannot drift from the code.
#
# extract_blocks.py lists the fenced blocks of README.md; each one is one
# check, by its language:
#   sql                 run with psql (ON_ERROR_STOP) in a throwaway cluster
#                       that preloads perfguard.  The blocks of one "## "
#                       section run in README order in one database of their
#                       own (so a block may use the tables an earlier block
#                       of its section created); that database has the
#                       extension already unless a block of the section
#                       runs CREATE EXTENSION itself.
#   sh, bash, shell     bash -n (syntax): they install packages, restart
#                       servers or run the test suite, so they are not run
#   python              parsed (ast.parse)
#   ruby                ruby -c
#   text                output, config files, formats: not checked, not counted
# A block without a language fails (label output "text"), and so does a
# language with no checker here.  A block right after
#   <!-- readme-test: skip: <reason> -->
# is not checked (the reason is printed); use it sparingly.
#
# As root it re-runs itself as pfgtest.  Last line: "N passed, M failed".

set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
readme=${README:-$here/../../README.md}
source "$here/../lib/cluster.sh"
pfg_as_unprivileged "$here/run_e2e.sh" "$@"

pfg_start_cluster
blocks=$PFG_TMP/blocks
"$PYTHON" "$here/extract_blocks.py" "$readme" "$blocks" >"$PFG_TMP/manifest" ||
	{ echo "extract_blocks.py failed"; echo "0 passed, 1 failed"; exit 1; }
check "README.md has SQL and shell examples to check" \
	bash -c "cut -f2 '$PFG_TMP/manifest' | grep -qx sql && cut -f2 '$PFG_TMP/manifest' | grep -qEx 'sh|bash|shell'"

# db_for SECTION: sets db to the database of SECTION, created on first use
# (not in a subshell: section_db must keep it)
declare -A section_db=()
db_for()
{
	local section=$1
	if [ -z "${section_db[$section]:-}" ]; then
		db=readme_$((${#section_db[@]} + 1))
		pfg_psql -c "CREATE DATABASE $db" >/dev/null
		# the section creates the extension itself, or it gets it here
		if ! awk -F'\t' -v s="$section" '$2 == "sql" && $4 == s && $6 == "" { print $5 }' \
			"$PFG_TMP/manifest" | xargs cat | grep -qiE 'create[[:space:]]+extension[^;]*perfguard'; then
			pfg_psql -d "$db" -c 'CREATE EXTENSION perfguard' >/dev/null
		fi
		section_db[$section]=$db
	fi
	db=${section_db[$section]}
}

# show FILE: a failed block and what its check printed
show()
{
	sed 's/^/    | /' "$1"
	sed 's/^/    > /' "$PFG_TMP/out"
}

# run_check NAME FILE CMD...: CMD is the check of the block in FILE
run_check()
{
	local name=$1 file=$2
	shift 2
	if "$@" >"$PFG_TMP/out" 2>&1; then
		check "$name" true
	else
		check "$name" false
		show "$file"
	fi
}

while IFS=$'\t' read -r index lang line section file reason; do
	where="README.md:$line ($section)"
	if [ -n "$reason" ] && [ "$lang" != bad-marker ] && [ "$lang" != unclosed ]; then
		echo "# skipped: $lang block $index at $where: $reason"
		continue
	fi
	case $lang in
		sql)
			db_for "$section"
			run_check "$where: the SQL block runs" "$file" \
				pfg_psql -d "$db" -f "$file" -o /dev/null
			;;
		sh | bash | shell)
			run_check "$where: the $lang block parses (bash -n)" "$file" bash -n "$file"
			;;
		python)
			run_check "$where: the python block parses" "$file" "$PYTHON" -c \
				'import ast, sys; ast.parse(open(sys.argv[1]).read(), sys.argv[1])' "$file"
			;;
		ruby)
			run_check "$where: the ruby block parses (ruby -c)" "$file" ruby -c "$file"
			;;
		text)
			;;
		unlabelled)
			check "$where: the block has a language (sql, sh, python, ruby; text for output)" false
			sed 's/^/    | /' "$file"
			;;
		bad-marker | unclosed)
			check "$where: $reason" false
			;;
		*)
			check "$where: a checker for \`\`\`$lang blocks (or label it text)" false
			;;
	esac
done <"$PFG_TMP/manifest"
pfg_finish
