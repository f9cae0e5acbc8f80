# frozen_string_literal: true

# Run the Bullet port (cases.rb) with ActiveRecord 6.1 against perfguard,
# three ways:
#
#   tagged       every statement of the case carries route=<label> and a
#                traceparent with a trace id of its own (the Rails
#                integration's sqlcommenter hook, integrations/rails)
#   autocommit   untagged, as ActiveRecord runs outside a transaction
#   transaction  untagged, the case inside ActiveRecord::Base.transaction
#
# The schema is created and seeded once (Bullet's seed), and copied to the
# schema bullet_seed; before each case a separate connection puts that copy
# back (and runs the case's own setup, e.g. pointing every role at one post).
# Each case then runs on a backend of its own, whose application_name is its
# label bullet/<case>/<way> (perfguard's label of an untagged request): the
# adapter reconnects with that name.  Prepared statements stay on (Rails'
# default): lookups are bound parameters of the extended protocol.
#
# Writes RESULTS (JSON) for ../lib/verify_cases.py, which reads perfguard's
# views and checks them.
#
#   ruby run_cases.rb RESULTS [--mode tagged|autocommit|transaction]... [CASE]...

require 'active_record'
require 'digest'
require 'json'
require 'pg'

HERE = __dir__
ROOT = ENV['PERFGUARD_ROOT'] || File.expand_path('../..', HERE)
require File.join(ROOT, 'integrations', 'rails', 'lib', 'perfguard')
require_relative 'schema'
require_relative 'models'
require_relative 'seed'
require_relative 'cases'

MODES = %w[tagged autocommit transaction].freeze
SNAPSHOT = 'bullet_seed'

results_path = ARGV.shift or abort 'usage: run_cases.rb RESULTS [--mode MODE]... [CASE]...'
modes = []
names = []
while (arg = ARGV.shift)
  if arg == '--mode'
    modes << ARGV.shift
  else
    names << arg
  end
end
modes = MODES if modes.empty?
abort "unknown mode in #{modes}" unless (modes - MODES).empty?
unknown = names - CASES.map(&:name)
abort "unknown case(s): #{unknown.join(', ')}" unless unknown.empty?
selected = names.empty? ? CASES : CASES.select { |c| names.include?(c.name) }

PG_PARAMS = { dbname: ENV.fetch('PGDATABASE'), host: ENV['PGHOST'], port: ENV['PGPORT'],
              user: ENV['PGUSER'] }.compact.freeze

ActiveRecord::Base.establish_connection(
  adapter: 'postgresql', database: PG_PARAMS[:dbname], host: PG_PARAMS[:host],
  port: PG_PARAMS[:port], username: PG_PARAMS[:user], application_name: 'bullet-seed'
)
# No static tags: untagged runs must send no comment at all (a framework tag
# alone is a request key for perfguard); tagged runs name the framework.
Perfguard.static_tags = {}
Perfguard.install!

# ---- schema, seed, snapshot ------------------------------------------------------

BulletSchema.create!
BulletSeed.seed!
app = ActiveRecord::Base.connection
TABLES = app.tables.sort.freeze
# every table's columns and primary key in the schema cache, so no case
# starts with catalog queries
TABLES.each { |t| app.schema_cache.add(t) }
ActiveRecord::Base.descendants.each { |m| m.columns_hash unless m.abstract_class? }

FIXTURES = PG.connect(**PG_PARAMS, application_name: 'bullet-fixtures')
FIXTURES.exec('SELECT perfguard.reset()')
FIXTURES.exec("DROP SCHEMA IF EXISTS #{SNAPSHOT} CASCADE; CREATE SCHEMA #{SNAPSHOT}")
TABLES.each { |t| FIXTURES.exec("CREATE TABLE #{SNAPSHOT}.#{t} AS TABLE public.#{t}") }
RESTORE_SQL = TABLES.map do |t|
  seq = app.columns(t).any? { |c| c.name == 'id' } &&
        FIXTURES.exec_params('SELECT pg_get_serial_sequence($1, $2) AS s', [t, 'id'])[0]['s']
  sql = "DELETE FROM public.#{t}; INSERT INTO public.#{t} SELECT * FROM #{SNAPSHOT}.#{t};"
  sql += " SELECT setval('#{seq}', (SELECT coalesce(max(id), 0) + 1 FROM public.#{t}), false);" if seq
  sql
end.join("\n").freeze

def restore(extra_sql)
  FIXTURES.exec(RESTORE_SQL)
  FIXTURES.exec(extra_sql) if extra_sql
end

# ---- one backend per case ------------------------------------------------------------

# Reconnect the adapter as a new backend named label.  (Rails 6.1's
# reconnect! reuses the old connection string; connect reads the adapter's
# connection parameters.)
def use_backend(label)
  conn = ActiveRecord::Base.connection
  conn.instance_variable_get(:@connection_parameters)[:application_name] = label
  conn.disconnect!
  conn.send(:connect)
end

def end_backend
  ActiveRecord::Base.connection.disconnect!
end

def traceparent(label)
  format('00-%<trace>s-%<span>016x-01', trace: Digest::MD5.hexdigest(label), span: 1)
end

# Warm-up: every case once, unchecked (its own label, outside bullet/), so
# that no checked run pays for ActiveRecord's first-use loading: a pause longer
# than perfguard.request_gap inside a case would split its request.
use_backend('bullet-warmup')
selected.each do |c|
  restore(c.setup_sql)
  c.body.call
rescue StandardError => e
  warn "warm-up of #{c.name}: #{e.class}: #{e.message}"
end
end_backend

results = []
modes.each do |mode|
  selected.each do |c|
    label = "bullet/#{c.name}/#{mode}"
    if c.skip[mode]
      puts "# skip #{label}: #{c.skip[mode]}"
      next
    end
    error = nil
    begin
      restore(c.setup_sql)
      use_backend(label)
      case mode
      when 'tagged'
        Perfguard.tagged(framework: 'rails', route: label, traceparent: traceparent(label)) { c.body.call }
      when 'autocommit'
        c.body.call
      when 'transaction'
        ActiveRecord::Base.transaction { c.body.call }
      end
    rescue StandardError => e
      error = "#{e.class}: #{e.message}"
      warn "#{label}: #{error}\n  #{e.backtrace.first(5).join("\n  ")}"
    ensure
      end_backend
    end
    results << { 'label' => label, 'kind' => c.kind, 'error' => error,
                 'expect' => c.expectation(mode) }
  end
end
File.write(results_path, JSON.pretty_generate(results))
puts "# #{selected.size} cases (#{selected.count(&:positive?)} positive), #{modes.size} runs each"
