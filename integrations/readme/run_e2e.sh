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
# Then the Django quickstart is followed alone in a fresh `django-admin
# startproject` (django_quickstart below): its test must catch an N+1 and
# pass once the view is fixed.
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

# The Django quickstart, followed alone: a fresh `django-admin startproject`
# with an app whose /books/ view has an N+1, the README's settings lines and
# test appended as they are (the integration comes from this tree, not
# /usr/share/perfguard, and DATABASES points at the throwaway cluster, as the
# app's own server would).  `manage.py test` must fail on the N+1 with
# perfguard's message and fix, then pass once the view uses select_related.
django_quickstart()
{
	local block proj=$PFG_TMP/quickstart rc name
	block=$(awk -F'\t' '$2 == "python" && $4 ~ /^Quickstart/ { print $5 }' "$PFG_TMP/manifest" |
		xargs grep -l perfguard_django | head -n 1)
	if [ -z "$block" ] || ! grep -q '^# tests.py' "$block"; then
		check "the README quickstart has a Django block with settings and a '# tests.py' part" false
		return
	fi
	mkdir -p "$proj"
	if ! (cd "$proj" && "$PYTHON" -m django startproject mysite . &&
		"$PYTHON" manage.py startapp books) >"$PFG_TMP/out" 2>&1; then
		check "django-admin startproject" false
		cat "$PFG_TMP/out"
		return
	fi
	pfg_psql -c 'CREATE DATABASE app' >/dev/null
	cat >>"$proj/mysite/settings.py" <<-END
		
		# the app's own PostgreSQL server (here: the throwaway cluster)
		DATABASES = {'default': {'ENGINE': 'django.db.backends.postgresql', 'NAME': 'app',
		                         'HOST': '$PGHOST', 'PORT': '$PGPORT', 'USER': '$PGUSER'}}
		INSTALLED_APPS += ['books']
		
		# --- from README.md ---
	END
	sed '/^# tests.py/,$d' "$block" >>"$proj/mysite/settings.py"
	sed -n '/^# tests.py/,$p' "$block" >"$proj/books/tests.py"
	"$PYTHON" - "$proj" <<-'END'
		import sys
		proj = sys.argv[1]
		files = {
		    'books/models.py': """from django.db import models


		class Author(models.Model):
		    name = models.CharField(max_length=100)


		class Book(models.Model):
		    title = models.CharField(max_length=200)
		    author = models.ForeignKey(Author, on_delete=models.CASCADE)
		""",
		    'books/views.py': """from django.http import HttpResponse

		from .models import Book


		def books(request):
		    # one query for the books, then one per book for its author
		    return HttpResponse(' / '.join('%s by %s' % (b.title, b.author.name)
		                                   for b in Book.objects.order_by('id')))
		""",
		    'mysite/urls.py': """from django.urls import path

		from books.views import books

		urlpatterns = [path('books/', books)]
		""",
		}
		for name, text in files.items():
		    with open('%s/%s' % (proj, name), 'w') as f:
		        f.write(text)
	END
	if ! (cd "$proj" && PYTHONPATH="$here/../django" "$PYTHON" manage.py makemigrations books) >"$PFG_TMP/out" 2>&1; then
		check "makemigrations" false
		cat "$PFG_TMP/out"
		return
	fi
	# the data the test's request reads: 10 authors, 30 books
	cat >"$proj/books/migrations/0002_seed.py" <<-'END'
		from django.db import migrations


		def seed(apps, schema_editor):
		    Author = apps.get_model('books', 'Author')
		    Book = apps.get_model('books', 'Book')
		    authors = [Author.objects.create(name='Author %d' % i) for i in range(10)]
		    for i in range(30):
		        Book.objects.create(title='Book %d' % i, author=authors[i % 10])


		class Migration(migrations.Migration):
		    dependencies = [('books', '0001_initial')]
		    operations = [migrations.RunPython(seed)]
	END
	(cd "$proj" && PYTHONPATH="$here/../django" "$PYTHON" manage.py test books) \
		>"$PFG_TMP/quickstart1.out" 2>&1
	rc=$?
	name="the Django quickstart in a fresh startproject: the test fails on the N+1, with the fix"
	if [ $rc -ne 0 ] && grep -q '^FAIL: test_list' "$PFG_TMP/quickstart1.out" &&
		grep -q 'PF001 perfguard: N+1 query' "$PFG_TMP/quickstart1.out" &&
		grep -q "select_related('author')" "$PFG_TMP/quickstart1.out"; then
		check "$name" true
	else
		check "$name" false
		cat "$PFG_TMP/quickstart1.out"
	fi
	sed -i "s/Book.objects.order_by('id')/Book.objects.select_related('author').order_by('id')/" \
		"$proj/books/views.py"
	(cd "$proj" && PYTHONPATH="$here/../django" "$PYTHON" manage.py test books) \
		>"$PFG_TMP/quickstart2.out" 2>&1
	rc=$?
	name="... and passes once the view uses select_related('author')"
	if [ $rc -eq 0 ] && grep -q '^OK' "$PFG_TMP/quickstart2.out"; then
		check "$name" true
	else
		check "$name" false
		cat "$PFG_TMP/quickstart2.out"
	fi
}
django_quickstart
pfg_finish
