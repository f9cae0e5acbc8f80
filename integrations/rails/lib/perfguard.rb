# frozen_string_literal: true

# perfguard: ActiveRecord integration of the perfguard PostgreSQL extension.
#
#   require "perfguard"
#   Perfguard.install!                          # once, after ActiveRecord loads
#   Perfguard.tagged(route: "/posts", controller: "posts", action: "index") do
#     ...                                       # one request: its statements carry the tags
#   end
#
# Perfguard.install! appends a sqlcommenter comment to every statement the
# PostgreSQL adapter sends, e.g.
#
#   SELECT "posts".* FROM "posts" /*action='index',controller='posts',framework='rails',request_id='9f0c...',route='%2Fposts'*/
#
# keys sorted, keys and values URL-encoded, values in single quotes.  Rails
# 7.1 has ActiveRecord::QueryLogs with a sqlcommenter formatter; when it is
# present install! uses it (with the same tags; untested here).  ActiveRecord
# 6.1 (Debian 12) has no QueryLogs, so
# install! prepends a module to the adapter's execute / execute_and_clear,
# which every query goes through (exec_query, exec_insert, exec_update,
# exec_delete, prepared or not).  Transaction statements (BEGIN, COMMIT,
# ROLLBACK, SAVEPOINT) stay untagged, as perfguard expects.
#
# The tags are per thread (Thread.current), so a Rack middleware or an
# around_action can set them per request:
#
#   around_action { |c, blk| Perfguard.tagged(route: request.path, controller: c.controller_name, action: c.action_name, &blk) }
#
# Request ids.  The outermost tagged block is one request: it adds the
# request's id, the traceparent of the current OpenTelemetry span when the
# app uses opentelemetry-api and a span is active, else a fresh random
# request_id (32 hex digits); nested blocks keep it.  perfguard identifies a
# request by the trace id of traceparent, else by request_id, whichever
# backend runs its statements (behind pgbouncer in transaction mode they
# move from one server connection to another), and never merges two
# requests, even back to back on one pooled connection.  Pass request_id:
# (e.g. request.request_id) or traceparent: to use your own, request_id: nil
# for none.
#
# Prepared statements: the comment is part of the statement text, so each
# distinct comment gets its own prepared statement.  Route tags are few
# (bounded by the adapter's statement_limit, as with QueryLogs), but a
# request id would make every request prepare its statements anew (Rails
# 7.1 turns prepared statements off when QueryLogs is on for that reason).
# So with Perfguard.request_ids = :auto (the default) the generated id is
# sent on connections configured with prepared_statements: false (what
# pgbouncer in transaction mode needs anyway) and left out on connections
# that prepare; true sends it on every connection, false generates none.  An
# id passed to tagged is sent as given.
require "erb"
require "securerandom"

module Perfguard
  FRAMEWORK = "rails"
  TAGS_KEY = :perfguard_tags
  ID_KEY = :perfguard_request_id
  QUERY_LOG_KEYS = %i[action controller framework route traceparent request_id].freeze
  # the tags that name a request, in perfguard's order of precedence
  ID_KEYS = %i[traceparent request_id].freeze
  TRANSACTION_SQL = /\A\s*(BEGIN|COMMIT|ROLLBACK|SAVEPOINT|RELEASE|START TRANSACTION)\b/i.freeze

  class << self
    # Static tags added to every statement (framework: 'rails' by default).
    attr_accessor :static_tags

    # :auto (default): the request id on connections without prepared
    # statements; true: on every connection; false: never.
    attr_writer :request_ids

    def request_ids
      @request_ids.nil? ? :auto : @request_ids
    end

    # The tags of the current statement: the static ones, the request's
    # generated id (see request_ids) and those of the tagged blocks.
    def tags
      (static_tags || {}).merge(Thread.current[ID_KEY] || {}).merge(Thread.current[TAGS_KEY] || {})
    end

    # Tag the statements run in the block; nested blocks add to the outer
    # tags.  The outermost block is a request: it adds the request's id
    # (request_id_tags) unless the tags name one (traceparent:, request_id:,
    # nil for none).  An id given here is sent on every connection; the
    # generated one as request_ids says.
    def tagged(**new_tags)
      previous = Thread.current[TAGS_KEY]
      previous_id = Thread.current[ID_KEY]
      merged = (previous || {}).merge(new_tags)
      if previous_id.nil? && request_ids && !names_request?(merged)
        Thread.current[ID_KEY] = request_id_tags
      end
      Thread.current[TAGS_KEY] = merged
      yield
    ensure
      Thread.current[TAGS_KEY] = previous
      Thread.current[ID_KEY] = previous_id
    end

    # The tag that names one request: the traceparent of the current
    # OpenTelemetry span when there is one, else a fresh random request_id.
    def request_id_tags
      traceparent = otel_traceparent
      traceparent ? { traceparent: traceparent } : { request_id: SecureRandom.hex(16) }
    end

    # The W3C traceparent of the current OpenTelemetry span, or nil.
    # Optional: opentelemetry-api is never required here; without it loaded
    # by the app there is no span.
    def otel_traceparent
      return nil unless defined?(::OpenTelemetry::Trace) &&
                        ::OpenTelemetry::Trace.respond_to?(:current_span)
      context = ::OpenTelemetry::Trace.current_span.context
      return nil unless context.valid?
      format("00-%<trace>s-%<span>s-%<flags>02x", trace: context.hex_trace_id,
             span: context.hex_span_id, flags: context.trace_flags.sampled? ? 1 : 0)
    rescue StandardError # an OpenTelemetry API we do not know: no traceparent
      nil
    end

    # The block's statements carry the tags but not the request's id.
    def without_request_id
      previous = Thread.current[TAGS_KEY]
      previous_id = Thread.current[ID_KEY]
      Thread.current[TAGS_KEY] = strip_request_id(previous || {}).merge(request_id: nil)
      Thread.current[ID_KEY] = nil
      yield
    ensure
      Thread.current[TAGS_KEY] = previous
      Thread.current[ID_KEY] = previous_id
    end

    def id_key?(key)
      ID_KEYS.include?(key.to_sym)
    end

    # Do the tags name the request (a traceparent or request_id key, even nil)?
    def names_request?(tags)
      tags.any? { |key, _| id_key?(key) }
    end

    def strip_request_id(tags)
      tags.reject { |key, _| id_key?(key) }
    end

    # Should statements of this connection carry the request's id?
    def request_id_on?(prepared_statements)
      case request_ids
      when :auto then !prepared_statements
      else !!request_ids
      end
    end

    def encode(value)
      ERB::Util.url_encode(value.to_s).gsub("'", "\\\\'")
    end

    # "/*k='v',...*/" for a hash of tags (nil values left out); "" when empty.
    def format_comment(tags)
      pairs = tags.map { |k, v| [k.to_s, v] }
                  .reject { |_, v| v.nil? || v.to_s.empty? }
                  .sort_by(&:first)
                  .map { |k, v| "#{encode(k)}='#{encode(v)}'" }
      pairs.empty? ? "" : "/*#{pairs.join(',')}*/"
    end

    # The tags of a statement on a connection that prepares its statements
    # or not: the generated request id only where request_ids says.
    def statement_tags(prepared_statements)
      return tags if request_id_on?(prepared_statements)
      (static_tags || {}).merge(Thread.current[TAGS_KEY] || {})
    end

    # sql with the comment; prepared_statements: whether the connection
    # prepares its statements (see request_ids).
    def annotate(sql, prepared_statements: false)
      return sql if !sql.is_a?(String) || TRANSACTION_SQL.match?(sql)
      comment = format_comment(statement_tags(prepared_statements))
      return sql if comment.empty?
      stripped = sql.rstrip
      if stripped.end_with?(";")
        "#{stripped.chomp(';').rstrip} #{comment};"
      else
        "#{stripped} #{comment}"
      end
    end

    # The value of a QueryLogs tag (Rails 7.1+), with the same rule for ids.
    def query_log_tag(key, connection)
      statement_tags(connection_prepares?(connection))[key]
    end

    def connection_prepares?(connection)
      return false if connection.nil?
      connection.instance_variable_get(:@prepared_statements) ? true : false
    end

    # Hook the comment into ActiveRecord (idempotent).
    def install!
      require "active_record"
      require "active_record/connection_adapters/postgresql_adapter"
      self.static_tags ||= { framework: FRAMEWORK }
      return if @installed
      if defined?(ActiveRecord::QueryLogs) && ActiveRecord::QueryLogs.respond_to?(:tags_formatter=) &&
         defined?(ActiveRecord.query_transformers)
        # Rails 7.1+: QueryLogs writes sqlcommenter comments itself.  (Not
        # exercised by run_e2e.sh, which runs Debian 12's ActiveRecord 6.1.)
        ActiveRecord::QueryLogs.tags_formatter = :sqlcommenter
        ActiveRecord::QueryLogs.taggings = ActiveRecord::QueryLogs.taggings.merge(
          QUERY_LOG_KEYS.to_h do |key|
            [key, ->(context) { Perfguard.query_log_tag(key, context.is_a?(Hash) ? context[:connection] : nil) }]
          end
        )
        ActiveRecord::QueryLogs.tags = (ActiveRecord::QueryLogs.tags + QUERY_LOG_KEYS).uniq
        unless ActiveRecord.query_transformers.include?(ActiveRecord::QueryLogs)
          ActiveRecord.query_transformers << ActiveRecord::QueryLogs
        end
      else
        ActiveRecord::ConnectionAdapters::PostgreSQLAdapter.prepend(AdapterComment)
      end
      @installed = true
    end
  end

  # ActiveRecord 6.1: the comment, added where every statement passes.
  # @prepared_statements is the connection's configuration (prepared_statements?
  # also turns false inside unprepared_statement blocks, and one request's
  # statements must all carry the id or none).
  module AdapterComment
    def execute(sql, name = nil)
      super(Perfguard.annotate(sql, prepared_statements: @prepared_statements), name)
    end

    private

    def execute_and_clear(sql, name, binds, prepare: false, &block)
      super(Perfguard.annotate(sql, prepared_statements: @prepared_statements), name, binds,
            prepare: prepare, &block)
    end
  end
end
