# frozen_string_literal: true

# Bullet's N+1 cases (spec/integration/active_record/association_spec.rb,
# polymorphic_spec.rb, counter_cache_spec.rb), ported to perfguard.
#
# Bullet's expectations become perfguard's:
#   be_detecting_unpreloaded_association_for(Post, :comments)
#       -> positive: an N+1 in perfguard.n_plus_one on the relation that is
#          looked up per row (table_name: comments), with the lookups the
#          loop sent, a parent query, and a fix naming the association
#          (includes(:comments)), inferred from column names: the schema has
#          no foreign-key constraint
#   be_completely_preloading_associations / not_to be_detecting...
#       -> negative: no N+1 (duplicates only where the SQL repeats an
#          identical statement)
# "Unused eager loading" is a Bullet detector perfguard does not have: those
# cases count as negatives (no N+1 may be reported).  Each positive has its
# fixed twin (Bullet's own includes/preload/eager_load case where it has one,
# else written here).
#
# The relation of an N+1 is the table whose filter column repeats:
# has_many / has_one: the child table (comments.post_id); belongs_to: the
# parent's table by id (posts.id); habtm: the join table
# (students_teachers.student_id); has_many :through: the through table
# (relationships.firm_id); has_one :through: submissions.user_id.
#
# Not ported: the call-stack test (same SQL as 'with empty?'), Bullet's own
# settings (n_plus_one_query_enable, unused_eager_loading_enable, safelists:
# their SQL is that of the cases below), 'should not raise a stack error' (the
# SQL of 'should not detect unpreload association'), the save! twin of 'query
# immediately after creation' (the same SQL as save), and two counter-cache
# verdicts that are about counter caches, not N+1 ('has_many through' and
# 'part of cities').

CASES = []

BulletCase = Struct.new(:name, :origin, :kind, :body, :n_plus_one, :allow, :dups,
                        :sequence_ok, :setup_sql, :skip, keyword_init: true) do
  def positive?
    !n_plus_one.empty?
  end

  # What the request of this case must report, run the given way.
  def expectation(mode)
    d = dups.respond_to?(:call) ? dups.call(mode) : dups
    { 'n_plus_one' => n_plus_one, 'allow' => allow, 'dups' => d,
      'sequence_ok' => sequence_ok, 'ignored' => false }
  end
end

def np(repeats, distinct, fix = nil)
  [repeats, distinct, fix]
end

# skip: { mode => why } for a way a case cannot run
def add_case(kind, name, origin, n_plus_one: {}, allow: {}, dups: {}, sequence_ok: false,
             setup_sql: nil, skip: {}, &body)
  CASES << BulletCase.new(name: name, origin: origin, kind: kind, body: body,
                          n_plus_one: n_plus_one, allow: allow, dups: dups,
                          sequence_ok: sequence_ok, setup_sql: setup_sql, skip: skip)
end

def positive(name, origin, **kw, &body)
  add_case('positive', name, origin, **kw, &body)
end

def twin(name, origin, **kw, &body)
  add_case('fixed twin', name, origin, **kw, &body)
end

def negative(name, origin, **kw, &body)
  add_case('negative', name, origin, **kw, &body)
end

HAS_MANY = 'association_spec has_many'
BELONGS_TO = 'association_spec belongs_to'
HABTM = 'association_spec has_and_belongs_to_many'
THROUGH = 'association_spec has_many :through'
HAS_ONE = 'association_spec has_one'
STI = 'association_spec STI'
POLY = 'polymorphic_spec'
COUNTER = 'counter_cache_spec'

COMMENTS = np(4, 4, 'includes\(:comments\)')

# every role points at post 1 (polymorphic_spec: 'with non-nil _type column')
ROLES_ON_POST = "UPDATE roles SET resource_type = 'Post', " \
                'resource_id = (SELECT id FROM posts ORDER BY id LIMIT 1)'

# ---- has_many: post => comments ----------------------------------------------

positive 'post_comments', "#{HAS_MANY} post => comments: should detect non preload post => comments",
         n_plus_one: { 'comments' => COMMENTS } do
  Post.all.each { |post| post.comments.map(&:name) }
end

twin 'post_comments_fixed', "#{HAS_MANY} post => comments: should detect preload with post => comments" do
  Post.includes(:comments).each { |post| post.comments.map(&:name) }
end

positive 'post_comments_by_sql', "#{HAS_MANY} post => comments: should detect non preload post => comments for find_by_sql",
         n_plus_one: { 'comments' => COMMENTS } do
  Post.find_by_sql('SELECT * FROM posts').each { |post| post.comments.map(&:name) }
end

twin 'post_comments_by_sql_fixed', "#{HAS_MANY} post => comments: find_by_sql, then preloaded (written here)" do
  posts = Post.find_by_sql('SELECT * FROM posts')
  ActiveRecord::Associations::Preloader.new.preload(posts, :comments)
  posts.each { |post| post.comments.map(&:name) }
end

negative 'post_comments_unused', "#{HAS_MANY} post => comments: should detect unused preload post => comments" do
  Post.includes(:comments).map(&:name)
end

negative 'post_names', "#{HAS_MANY} post => comments: should not detect unused preload post => comments" do
  Post.all.map(&:name)
end

negative 'comment_post_inverse', "#{HAS_MANY} post => comments: should detect non preload comment => post with inverse_of" do
  Post.includes(:comments).each do |post|
    post.comments.each do |comment|
      comment.name
      comment.post.name
    end
  end
end

negative 'comment_post_inverse_query', "#{HAS_MANY} post => comments: should detect non preload comment => post with inverse_of from a query" do
  Post.first.comments.find_each do |comment|
    comment.name
    comment.post.name
  end
end

positive 'post_comments_empty', "#{HAS_MANY} post => comments: should detect non preload post => comments with empty?",
         n_plus_one: { 'comments' => COMMENTS } do
  Post.all.each { |post| post.comments.empty? }
end

twin 'post_comments_empty_fixed', "#{HAS_MANY} post => comments: should not detect unused preload post => comment with empty?" do
  Post.includes(:comments).each { |post| post.comments.empty? }
end

positive 'post_comments_include', "#{HAS_MANY} post => comments: should detect non preload post => comments with include?",
         n_plus_one: { 'comments' => COMMENTS } do
  comment = Comment.last
  Post.all.each { |post| post.comments.include?(comment) }
end

twin 'post_comments_include_fixed', "#{HAS_MANY} post => comments: include? after includes (written here)" do
  comment = Comment.last
  Post.includes(:comments).each { |post| post.comments.include?(comment) }
end

positive 'post_comments_count', "#{HAS_MANY} post => comments: should detect non preload post => comments with count",
         n_plus_one: { 'comments' => COMMENTS } do
  Post.all.each { |post| post.comments.count }
end

# Bullet: 'should not detect unused preload post => comment with count' (no
# notification).  But count always runs SELECT COUNT(*), loaded or not: the
# database sees one count per post after the posts, the aggregate per row of
# post_comments_count.  A positive here; includes() is not its fix, so only
# the relation and the counts are checked.
positive 'post_comments_count_preloaded', "#{HAS_MANY} post => comments: should not detect unused preload post => comment with count (4 COUNTs all the same)",
         n_plus_one: { 'comments' => np(4, 4) } do
  Post.includes(:comments).each { |post| post.comments.count }
end

# Not in one transaction: ActiveRecord 6.1 holds the connection's monitor for
# the whole transaction block, and Ruby 3 monitors belong to a fiber, so the
# fiber's first query would wait forever for the monitor its own thread holds.
positive 'post_comments_fiber', "#{HAS_MANY} post => comments inside Fiber: should detect non preload post => comments",
         n_plus_one: { 'comments' => COMMENTS },
         skip: { 'transaction' => 'ActiveRecord 6.1 transactions hold a monitor that a Fiber cannot enter' } do
  Fiber.new { Post.all.each { |post| post.comments.map(&:name) } }.resume
end

# ---- has_many: category => posts => comments -------------------------------------

CATEGORY_POSTS = 'association_spec has_many category => posts => comments'

positive 'category_posts_comments', "#{CATEGORY_POSTS}: should detect non preload category => posts => comments",
         n_plus_one: { 'posts' => np(2, 2, 'includes\(:posts\)'), 'comments' => COMMENTS } do
  Category.all.each { |category| category.posts.each { |post| post.comments.map(&:name) } }
end

twin 'category_posts_comments_fixed', "#{CATEGORY_POSTS}: should detect preload with category => posts => comments" do
  Category.includes(posts: :comments).each { |category| category.posts.each { |post| post.comments.map(&:name) } }
end

positive 'category_posts_preloaded_comments', "#{CATEGORY_POSTS}: should detect preload category => posts, but no post => comments",
         n_plus_one: { 'comments' => COMMENTS } do
  Category.includes(:posts).each { |category| category.posts.each { |post| post.comments.map(&:name) } }
end

negative 'category_posts_comments_references', "#{CATEGORY_POSTS}: should detect preload with category => posts => comments with posts.id > 0" do
  Category.includes(posts: :comments).where('posts.id > 0').references(:posts).each do |category|
    category.posts.each { |post| post.comments.map(&:name) }
  end
end

negative 'category_posts_comments_unused', "#{CATEGORY_POSTS}: should detect unused preload with category => posts => comments" do
  Category.includes(posts: :comments).map(&:name)
end

negative 'category_posts_unused_comments', "#{CATEGORY_POSTS}: should detect unused preload with post => comments, no category => posts" do
  Category.includes(posts: :comments).each { |category| category.posts.map(&:name) }
end

# ---- has_many: category => posts, category => entries -------------------------------

CATEGORY_ENTRIES = 'association_spec has_many category => posts, category => entries'

positive 'category_posts_entries', "#{CATEGORY_ENTRIES}: should detect non preload with category => [posts, entries]",
         n_plus_one: { 'posts' => np(2, 2, 'includes\(:posts\)'),
                       'entries' => np(2, 2, 'includes\(:entries\)') },
         sequence_ok: true do
  Category.all.each do |category|
    category.posts.map(&:name)
    category.entries.map(&:name)
  end
end

twin 'category_posts_entries_fixed', "#{CATEGORY_ENTRIES}: should detect preload with category => [posts, entries]" do
  Category.includes(%i[posts entries]).each do |category|
    category.posts.map(&:name)
    category.entries.map(&:name)
  end
end

positive 'category_entries', "#{CATEGORY_ENTRIES}: should detect preload with category => posts, but not with category => entries",
         n_plus_one: { 'entries' => np(2, 2, 'includes\(:entries\)') } do
  Category.includes(:posts).each do |category|
    category.posts.map(&:name)
    category.entries.map(&:name)
  end
end

negative 'category_posts_entries_unused', "#{CATEGORY_ENTRIES}: should detect unused preload with category => [posts, entries]" do
  Category.includes(%i[posts entries]).map(&:name)
end

negative 'category_entries_unused', "#{CATEGORY_ENTRIES}: should detect unused preload with category => entries, but not with category => posts" do
  Category.includes(%i[posts entries]).each { |category| category.posts.map(&:name) }
end

# ---- has_many: post => comment, and the scopes ---------------------------------------

negative 'post_first_comment', "#{HAS_MANY} post => comment: should detect unused preload with post => comments" do
  Post.includes(:comments).each { |post| post.comments.first&.name }
end

negative 'one_post_comments', "#{HAS_MANY} post => comment: should detect preload with post => comments" do
  Post.first.comments.map(&:name)
end

# The draft post is looked up twice with the same parameters: a duplicate,
# except untagged in autocommit, where Rails' BEGIN/COMMIT around the destroy
# ends the request between the two lookups.
negative 'draft_post_link', "#{HAS_MANY} post => comment: should not detect unused preload with category => posts",
         dups: ->(mode) { mode == 'autocommit' ? {} : { 'posts' => 2 } } do
  category = Category.first
  category.draft_post.destroy!
  post = category.draft_post
  post.update!(link: true)
end

negative 'category_posts_writer', 'association_spec has_many category => posts => writer: should not detect unused preload associations' do
  category = Category.includes(posts: :writer).order('id DESC').find_by_name('first')
  category.posts.map do |post|
    post.name
    post.writer.name
  end
end

negative 'scope_in_category_name', 'association_spec has_many scope for_category_name: should detect preload with post => category' do
  Post.in_category_name('first').references(:categories).each { |post| post.category.name }
end

negative 'scope_in_category_name_unused', 'association_spec has_many scope for_category_name: should not be unused preload post => category' do
  Post.in_category_name('first').references(:categories).map(&:name)
end

negative 'scope_preload_comments', 'association_spec has_many scope preload_comments: should detect preload post => comments with scope' do
  Post.preload_comments.each { |post| post.comments.map(&:name) }
end

negative 'scope_preload_comments_unused', 'association_spec has_many scope preload_comments: should detect unused preload with scope' do
  Post.preload_comments.map(&:name)
end

# ---- belongs_to ------------------------------------------------------------------------

POST = np(9, 3, 'includes\(:post\)')

positive 'comment_post', "#{BELONGS_TO} comment => post: should detect non preload with comment => post",
         n_plus_one: { 'posts' => POST }, dups: { 'posts' => 4 } do
  Comment.all.each { |comment| comment.post.name }
end

twin 'comment_post_fixed', "#{BELONGS_TO} comment => post: should detect preload with comment => post" do
  Comment.includes(:post).each { |comment| comment.post.name }
end

negative 'one_comment_post', "#{BELONGS_TO} comment => post: should detect preload with one comment => post" do
  Comment.first.post.name
end

negative 'comment_names', "#{BELONGS_TO} comment => post: should not detect preload with comment => post" do
  Comment.all.map(&:name)
end

negative 'comment_post_unused', "#{BELONGS_TO} comment => post: should detect unused preload with comment => post" do
  Comment.includes(:post).map(&:name)
end

negative 'after_save_new_post', "#{BELONGS_TO} comment => post in an after_save: should not detect newly assigned object" do
  new_post = Post.new(category: Category.first)
  new_post.trigger_after_save = true
  new_post.save!
end

# Bullet asserts comment => post; each post then loads its category, a second
# lookup per comment (perfguard may report it too, or both as one sequence).
positive 'comment_post_category', "#{BELONGS_TO} comment => post => category: should detect non preload association with comment => post",
         n_plus_one: { 'posts' => POST }, allow: { 'categories' => np(9, 2) },
         dups: { 'posts' => 4, 'categories' => 6 }, sequence_ok: true do
  Comment.all.each { |comment| comment.post.category.name }
end

negative 'one_comment_post_category', "#{BELONGS_TO} comment => post => category: should not detect non preload association with only one comment" do
  Comment.first.post.category.name
end

positive 'comment_post_preloaded_category', "#{BELONGS_TO} comment => post => category: should detect non preload association with post => category",
         n_plus_one: { 'categories' => np(3, 2, 'includes\(:category\)') }, dups: { 'categories' => 2 } do
  Comment.includes(:post).each { |comment| comment.post.category.name }
end

twin 'comment_post_category_fixed', "#{BELONGS_TO} comment => post => category: should not detect unpreload association" do
  Comment.includes(post: :category).each { |comment| comment.post.category.name }
end

positive 'comment_post_writer', "#{BELONGS_TO} comment => author, post => writer: should detect non preloaded writer",
         n_plus_one: { 'base_users' => np(3, 2, 'includes\(:writer\)') }, dups: { 'base_users' => 2 } do
  Comment.includes(%i[author post]).where(['base_users.id = ?', BaseUser.first]).references(:base_users)
         .each { |comment| comment.post.writer.name }
end

twin 'comment_post_writer_fixed', "#{BELONGS_TO} comment => author, post => writer: should detect unused preload with comment => author" do
  Comment.includes([:author, { post: :writer }]).where(['base_users.id = ?', BaseUser.first])
         .references(:base_users).each { |comment| comment.post.writer.name }
end

positive 'writer_newspaper', "#{BELONGS_TO} comment => author, post => writer: should detect non preloading with writer => newspaper",
         n_plus_one: { 'newspapers' => np(2, 2, 'includes\(:newspaper\)') } do
  Comment.includes(post: :writer).where("posts.name like '%first%'").references(:posts).each do |comment|
    comment.post.writer.newspaper.name
  end
end

twin 'writer_newspaper_fixed', "#{BELONGS_TO} comment => author, post => writer: writer => newspaper preloaded (written here)" do
  Comment.includes(post: { writer: :newspaper }).where("posts.name like '%first%'").references(:posts).each do |comment|
    comment.post.writer.newspaper.name
  end
end

# ---- has_and_belongs_to_many -------------------------------------------------------------

negative 'post_deals', "#{HABTM} posts <=> deals: should detect preload associations with join tables that have identifier" do
  Post.includes(:deals).each { |post| post.deals.map(&:name) }
end

TEACHERS = np(2, 2, 'includes\(:teachers\)')

positive 'student_teachers', "#{HABTM} students <=> teachers: should detect non preload associations",
         n_plus_one: { 'students_teachers' => TEACHERS } do
  Student.all.each { |student| student.teachers.map(&:name) }
end

twin 'student_teachers_fixed', "#{HABTM} students <=> teachers: should detect preload associations" do
  Student.includes(:teachers).each { |student| student.teachers.map(&:name) }
end

negative 'student_teachers_unused', "#{HABTM} students <=> teachers: should detect unused preload associations" do
  Student.includes(:teachers).map(&:name)
end

negative 'student_names', "#{HABTM} students <=> teachers: should detect no unused preload associations" do
  Student.all.map(&:name)
end

positive 'student_teachers_empty', "#{HABTM} students <=> teachers: should detect non preload student => teachers with empty?",
         n_plus_one: { 'students_teachers' => TEACHERS } do
  Student.all.each { |student| student.teachers.empty? }
end

twin 'student_teachers_empty_fixed', "#{HABTM} students <=> teachers: empty? after includes (written here)" do
  Student.includes(:teachers).each { |student| student.teachers.empty? }
end

negative 'user_roles_resource', "#{HABTM} user => roles: should detect preload associations" do
  User.first.roles.includes(:resource).each(&:resource)
end

# ---- has_many :through ----------------------------------------------------------------------

CLIENTS = np(2, 2, 'includes\(:clients\)')
GROUPS = np(2, 2, 'includes\(:groups\)')

positive 'firm_clients', "#{THROUGH} firm => clients: should detect non preload associations",
         n_plus_one: { 'relationships' => CLIENTS } do
  Firm.all.each { |firm| firm.clients.map(&:name) }
end

twin 'firm_clients_fixed', "#{THROUGH} firm => clients: should detect preload associations" do
  Firm.preload(:clients).each { |firm| firm.clients.map(&:name) }
end

twin 'firm_clients_eager', "#{THROUGH} firm => clients: should detect eager load association" do
  Firm.eager_load(:clients).each { |firm| firm.clients.map(&:name) }
end

negative 'firm_names', "#{THROUGH} firm => clients: should not detect preload associations" do
  Firm.all.map(&:name)
end

negative 'firm_clients_unused', "#{THROUGH} firm => clients: should detect unused preload associations" do
  Firm.includes(:clients).map(&:name)
end

positive 'firm_groups', "#{THROUGH} firm => clients => groups: should detect non preload associations",
         n_plus_one: { 'relationships' => GROUPS } do
  Firm.all.each { |firm| firm.groups.map(&:name) }
end

twin 'firm_groups_fixed', "#{THROUGH} firm => clients => groups: should detect preload associations" do
  Firm.preload(:groups).each { |firm| firm.groups.map(&:name) }
end

twin 'firm_groups_eager', "#{THROUGH} firm => clients => groups: should detect eager load associations" do
  Firm.eager_load(:groups).each { |firm| firm.groups.map(&:name) }
end

negative 'firm_groups_unused', "#{THROUGH} firm => clients => groups: should detect unused preload associations" do
  Firm.includes(:groups).map(&:name)
end

# ---- has_one, has_one => has_many, has_one :through -------------------------------------------

positive 'company_address', "#{HAS_ONE} company => address: should detect non preload association",
         n_plus_one: { 'addresses' => np(2, 2, 'includes\(:address') } do
  Company.all.each { |company| company.address.name }
end

twin 'company_address_fixed', "#{HAS_ONE} company => address: should detect preload association" do
  Company.includes(:address).each { |company| company.address.name }
end

negative 'company_names', "#{HAS_ONE} company => address: should not detect preload association" do
  Company.all.map(&:name)
end

negative 'company_address_unused', "#{HAS_ONE} company => address: should detect unused preload association" do
  Company.includes(:address).map(&:name)
end

negative 'user_submission_replies', 'association_spec has_one => has_many: should not detect preload association' do
  user = User.first
  user.submission.replies.map(&:name)
end

HAS_ONE_THROUGH = 'association_spec has_one :through user => attachment'

positive 'user_attachment', "#{HAS_ONE_THROUGH}: should detect non preload associations",
         n_plus_one: { 'submissions' => np(2, 2, 'attachment') } do
  User.all.each { |user| user.submission_attachment.file_name }
end

twin 'user_attachment_fixed', "#{HAS_ONE_THROUGH}: should not detect preload associations with includes" do
  User.includes(:submission_attachment).each { |user| user.submission_attachment.file_name }
end

twin 'user_attachment_eager', "#{HAS_ONE_THROUGH}: should detect preload associations with eager_load" do
  User.eager_load(:submission_attachment).each { |user| user.submission_attachment.file_name }
end

negative 'user_names', "#{HAS_ONE_THROUGH}: should not detect preload associations" do
  User.all.map(&:name)
end

negative 'user_attachment_unused', "#{HAS_ONE_THROUGH}: should detect unused preload associations" do
  User.includes(:submission_attachment).map(&:name)
end

negative 'possible_objects', 'association_spec call one association that in possible objects: should not detect preload association' do
  Post.all
  Post.first.comments.map(&:name)
end

negative 'document_children_after_save', 'association_spec query immediately after creation with save: document => children' do
  document1 = Document.new
  document1.children.build
  document1.save

  document2 = Document.new(parent: document1)
  document2.save
  document2.parent

  document1.children.each.first
end

# ---- STI -------------------------------------------------------------------------------------------

positive 'page_author', "#{STI} page => author: should detect non preload associations",
         n_plus_one: { 'authors' => np(4, 2, 'includes\(:author\)') }, dups: { 'authors' => 2 } do
  Page.all.each { |page| page.author.name }
end

twin 'page_author_fixed', "#{STI} page => author: should detect preload associations" do
  Page.includes(:author).each { |page| page.author.name }
end

negative 'page_author_unused', "#{STI} page => author: should detect unused preload associations" do
  Page.includes(:author).map(&:name)
end

negative 'page_names', "#{STI} page => author: should not detect preload associations" do
  Page.all.map(&:name)
end

# ---- polymorphic belongs_to -------------------------------------------------------------------------

negative 'role_resource_nil', "#{POLY} with nil _type column: does not flag N+1 when accessed without preload" do
  roles = Role.all.to_a
  roles.each(&:resource)
end

negative 'role_resource_nil_preloaded', "#{POLY} with nil _type column: does not flag N+1 when accessed after preload" do
  roles = Role.preload(:resource).to_a
  roles.each(&:resource)
end

# Every role points at the same post: one lookup per role, each with the same
# id.  The loop over one value: an N+1 with one distinct parameter set (and
# the duplicate it also is).
positive 'role_resource_one_post', "#{POLY} with non-nil _type column: still flags N+1 when accessed without preload",
         n_plus_one: { 'posts' => np(2, 1, 'includes\(:resource\)') }, dups: { 'posts' => 2 },
         setup_sql: ROLES_ON_POST do
  roles = Role.all.to_a
  roles.each(&:resource)
end

twin 'role_resource_one_post_fixed', "#{POLY} with non-nil _type column: the same, preloaded (written here)",
     setup_sql: ROLES_ON_POST do
  roles = Role.preload(:resource).to_a
  roles.each(&:resource)
end

negative 'post_roles_resource', "#{POLY} with non-nil _type column: does not flag UnusedEagerLoading when an inversed polymorphic belongs_to is accessed",
         setup_sql: ROLES_ON_POST do
  Post.preload(roles: :resource).each do |post|
    post.roles.each(&:resource)
  end
end

# ---- counter cache: a count per row is an aggregate per row --------------------------------------------

CITIES = np(2, 2, '\(:cities\)')

positive 'country_cities_size', "#{COUNTER}: should need counter cache with all cities",
         n_plus_one: { 'cities' => CITIES } do
  Country.all.each { |country| country.cities.size }
end

negative 'person_pets_size', "#{COUNTER}: should not need counter cache if already define counter_cache" do
  Person.all.each { |person| person.pets.size }
end

negative 'one_country_cities_size', "#{COUNTER}: should not need counter cache with only one object" do
  Country.first.cities.size
end

negative 'country_cities_empty_preloaded', "#{COUNTER}: should not need counter cache without size" do
  Country.includes(:cities).each { |country| country.cities.empty? }
end

positive 'country_cities_count', "#{COUNTER} with count: should need counter cache",
         n_plus_one: { 'cities' => CITIES } do
  Country.all.each { |country| country.cities.count }
end

positive 'person_pets_count', "#{COUNTER} with count: should notify even with counter cache",
         n_plus_one: { 'pets' => np(2, 2, '\(:pets\)') } do
  Person.all.each { |person| person.pets.count }
end
