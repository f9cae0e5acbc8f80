# frozen_string_literal: true

# Bullet's test models (spec/models/*.rb), for ActiveRecord 6.1.

class Address < ActiveRecord::Base
  belongs_to :company
end

class Attachment < ActiveRecord::Base
  belongs_to :submission
end

class Author < ActiveRecord::Base
  has_many :documents
end

class BaseUser < ActiveRecord::Base
  has_many :comments
  has_many :posts
  belongs_to :newspaper
end

class Writer < BaseUser
end

class Category < ActiveRecord::Base
  has_many :posts, inverse_of: :category
  has_many :entries
  has_many :users

  def draft_post
    posts.draft.first_or_create
  end
end

class City < ActiveRecord::Base
  belongs_to :country
end

class Client < ActiveRecord::Base
  belongs_to :group
  has_many :relationships
  has_many :firms, through: :relationships
end

class Comment < ActiveRecord::Base
  belongs_to :post, inverse_of: :comments
  belongs_to :author, class_name: 'BaseUser'

  validates :post, presence: true
end

class Company < ActiveRecord::Base
  has_one :address
end

class Country < ActiveRecord::Base
  has_many :cities
end

class Deal < ActiveRecord::Base
  has_and_belongs_to_many :posts
end

class Document < ActiveRecord::Base
  has_many :children, class_name: 'Document', foreign_key: 'parent_id'
  belongs_to :parent, class_name: 'Document', foreign_key: 'parent_id'
  belongs_to :author
end

class Folder < Document
end

class Page < Document
end

class Entry < ActiveRecord::Base
  belongs_to :category
end

class Firm < ActiveRecord::Base
  has_many :relationships
  has_many :clients, through: :relationships
  has_many :groups, through: :clients
end

class Group < ActiveRecord::Base
end

class Newspaper < ActiveRecord::Base
  has_many :writers, class_name: 'BaseUser'
end

class Person < ActiveRecord::Base
  has_many :pets
end

class Pet < ActiveRecord::Base
  belongs_to :person, counter_cache: true
end

class Post < ActiveRecord::Base
  belongs_to :category, inverse_of: :posts
  belongs_to :writer
  has_many :comments, inverse_of: :post
  has_many :roles, as: :resource, inverse_of: :resource
  has_and_belongs_to_many :deals

  validates :category, presence: true

  scope :preload_comments, -> { includes(:comments) }
  scope :in_category_name, ->(name) { where(['categories.name = ?', name]).includes(:category) }
  scope :draft, -> { where(active: false) }

  def link=(*)
    comments.new
  end

  # Bullet's 'should not detect newly assigned object in an after_save'
  attr_accessor :trigger_after_save

  after_save do
    next unless trigger_after_save

    temp_comment = Comment.new(post: self)
    # self is "possible" through the new comment, though not saved yet
    temp_comment.post
    # assigned on a new object: nothing to preload
    category
  end
end

class Relationship < ActiveRecord::Base
  belongs_to :firm
  belongs_to :client
end

class Reply < ActiveRecord::Base
  belongs_to :submission
end

class Role < ActiveRecord::Base
  has_and_belongs_to_many :users
  belongs_to :resource, polymorphic: true
end

class Student < ActiveRecord::Base
  has_and_belongs_to_many :teachers
end

class Submission < ActiveRecord::Base
  belongs_to :user
  has_many :replies
  has_one :attachment
end

class Teacher < ActiveRecord::Base
  has_and_belongs_to_many :students
end

class User < ActiveRecord::Base
  has_one :submission
  has_one :submission_attachment, through: :submission, source: :attachment, class_name: 'Attachment'
  belongs_to :category
  has_and_belongs_to_many :roles
end
