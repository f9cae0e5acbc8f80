# frozen_string_literal: true

# perfguard: ActiveRecord integration of the perfguard PostgreSQL extension.
#
#   require "perfguard"
#   Perfguard.install!                          # once, after ActiveRecord loads
#   Perfguard.tagged(route: "/posts", controller: "posts", action: "index") do
#     ...                                       # statements carry the tags
#   end
#
# Perfguard.install! appends a sqlcommenter comment to every statement the
# PostgreSQL adapter sends, e.g.
#
#   SELECT "posts".* FROM "posts" /*action='index',controller='posts',framework='rails',route='%2Fposts'*/
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
# Note on prepared statements: the comment is part of the statement text, so
# each route gets its own prepared statement (bounded by the adapter's
# statement_limit, as with QueryLogs).

require "erb"

module Perfguard
  FRAMEWORK = "rails"
  TAGS_KEY = :perfguard_tags
  QUERY_LOG_KEYS = %i[action controller framework route traceparent].freeze
  TRANSACTION_SQL = /\A\s*(BEGIN|COMMIT|ROLLBACK|SAVEPOINT|RELEASE|START TRANSACTION)\b/i.freeze

  class << self
    # Static tags added to every statement (framework: 'rails' by default).
    attr_accessor :static_tags

    def tags
      (static_tags || {}).merge(Thread.current[TAGS_KEY] || {})
    end

    # Tag the statements run in the block; nested blocks add to the outer tags.
    def tagged(**new_tags)
      previous = Thread.current[TAGS_KEY]
      Thread.current[TAGS_KEY] = (previous || {}).merge(new_tags)
      yield
    ensure
      Thread.current[TAGS_KEY] = previous
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

    def annotate(sql)
      return sql if !sql.is_a?(String) || TRANSACTION_SQL.match?(sql)
      comment = format_comment(tags)
      return sql if comment.empty?
      stripped = sql.rstrip
      if stripped.end_with?(";")
        "#{stripped.chomp(';').rstrip} #{comment};"
      else
        "#{stripped} #{comment}"
      end
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
          QUERY_LOG_KEYS.to_h { |key| [key, -> { Perfguard.tags[key] }] }
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
  module AdapterComment
    def execute(sql, name = nil)
      super(Perfguard.annotate(sql), name)
    end

    private

    def execute_and_clear(sql, name, binds, prepare: false, &block)
      super(Perfguard.annotate(sql), name, binds, prepare: prepare, &block)
    end
  end
end
