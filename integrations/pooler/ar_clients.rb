# frozen_string_literal: true

# ActiveRecord 6.1 clients (driver of run_e2e.sh; see pfgt.py for the
# protocol: PFGT_PHASE, PFGT_DIR, PFGT_HOST, PFGT_PORT; ready/go; manifest).
#
# Debian's ruby-activerecord and ruby-pg, prepared_statements: false (what
# Rails deployments behind pgbouncer in transaction mode use), tagged by
# integrations/rails/lib (Perfguard.install!).  PFGT_CLIENTS (4) threads, each
# with its own connection, run PFGT_ROUNDS (2) rounds of requests, each
# request a Perfguard.tagged(route:, controller:, action:) block, as an
# around_action does:
#   posts          Book.order(:id) and author per book: an N+1 of 30 (31 queries)
#   posts-includes includes(:author): 2 queries, no finding
#   write          20 create! (each BEGIN; INSERT; COMMIT): a write loop of 20
#   write-bulk     insert_all of 20 rows: 1 query, no finding
#   dup            a list and Author.find(7) three times: a duplicate of 3
#   dup-clean      a list and one find: no finding

$LOAD_PATH.unshift File.expand_path("../rails/lib", __dir__)
require "json"
require "active_record"
require "perfguard"

STACK = "rails"
PHASE = ENV.fetch("PFGT_PHASE", "dev")
DIR = ENV.fetch("PFGT_DIR", ".")
CLIENTS = Integer(ENV.fetch("PFGT_CLIENTS", "4"))
ROUNDS = Integer(ENV.fetch("PFGT_ROUNDS", "2"))
LOOKUPS = 30
WRITES = 20

Perfguard.install!
ActiveRecord::Base.establish_connection(
  adapter: "postgresql", host: ENV.fetch("PFGT_HOST"), port: ENV.fetch("PFGT_PORT").to_i,
  username: ENV.fetch("PGUSER"), database: ENV.fetch("PGDATABASE", "postgres"),
  prepared_statements: false, advisory_locks: false, pool: CLIENTS + 2
)
ActiveRecord::Base.logger = nil

class Author < ActiveRecord::Base
  self.table_name = "pf_author"
end

class Book < ActiveRecord::Base
  self.table_name = "pf_book"
  belongs_to :author
end

class Hit < ActiveRecord::Base
  self.table_name = "pf_hit"
end

def route(name)
  "/rails/#{PHASE}/#{name}"
end

# name => [queries per request, n_plus_one, duplicate, write_loop]
KINDS = {
  "posts" => [LOOKUPS + 1, LOOKUPS, nil, nil],
  "posts-includes" => [2, nil, nil, nil],
  "write" => [WRITES, nil, nil, WRITES],
  "write-bulk" => [1, nil, nil, nil],
  "dup" => [4, nil, 3, nil],
  "dup-clean" => [2, nil, nil, nil]
}.freeze

def page(kind)
  case kind
  when "posts" then Book.order(:id).map { |b| "#{b.title} by #{b.author.name}" }
  when "posts-includes" then Book.includes(:author).order(:id).map { |b| "#{b.title} by #{b.author.name}" }
  when "write" then WRITES.times { |k| Hit.create!(route: "rails", n: k) }
  when "write-bulk" then Hit.insert_all(Array.new(WRITES) { |k| { route: "rails", n: k } })
  when "dup"
    Book.order(:id).limit(5).to_a
    3.times { Author.find(7).name }
  when "dup-clean"
    Book.order(:id).limit(5).to_a
    Author.find(7).name
  end
end

# one request, as an around_action would tag it
def request(kind)
  Perfguard.tagged(route: route(kind), controller: "pooler", action: kind.tr("-", "_")) { page(kind) }
end

def wait_go
  deadline = Time.now + 300
  sleep 0.02 until File.exist?(File.join(DIR, "go")) || Time.now > deadline
  raise "no go" unless File.exist?(File.join(DIR, "go"))
end

errors = Queue.new
warm = Queue.new
go = false
go_lock = Mutex.new
go_cond = ConditionVariable.new
kinds = KINDS.keys

threads = Array.new(CLIENTS) do |index|
  Thread.new do
    ActiveRecord::Base.connection_pool.with_connection do
      # the connection, its type map and the schema cache (columns, primary
      # keys, the unique indexes insert_all reads): untagged catalog queries,
      # before the phase starts; each page once, untagged
      kinds.each { |kind| page(kind) }
      warm << index
      go_lock.synchronize { go_cond.wait(go_lock) until go }
      ROUNDS.times do |rnd|
        k = (index + rnd) % kinds.size
        (kinds[k..] + kinds[0...k]).each { |kind| request(kind) }
      end
      # close it here: the pool's disconnect! would check every connection
      # out with "SELECT 1" (verify!), untagged, on a shared backend
      ActiveRecord::Base.connection.disconnect!
    end
  rescue Exception => e # rubocop:disable Lint/RescueException
    errors << "#{e.class}: #{e.message}\n#{e.backtrace.first(5).join("\n")}"
    warm << index
  end
end

CLIENTS.times { warm.pop }
File.write(File.join(DIR, "ready.#{STACK}"), Process.pid.to_s)
wait_go
go_lock.synchronize do
  go = true
  go_cond.broadcast
end
threads.each(&:join)

failed = false
until errors.empty?
  warn errors.pop
  failed = true
end

manifest = KINDS.map do |kind, (queries, np, dup, wl)|
  { route: route(kind), stack: STACK, requests: CLIENTS * ROUNDS, queries: queries,
    n_plus_one: np, duplicate: dup, write_loop: wl, ids: true, note: "" }
end
path = File.join(DIR, "manifest.#{STACK}.json")
File.write("#{path}.tmp", JSON.pretty_generate(manifest))
File.rename("#{path}.tmp", path)
exit(failed ? 1 : 0)
