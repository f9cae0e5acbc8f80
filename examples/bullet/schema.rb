# frozen_string_literal: true

# Bullet's test schema (spec/support/sqlite_seed.rb, setup_db), on PostgreSQL.
#
# As in Bullet, the *_id columns are plain integers: no foreign-key
# constraint anywhere (Rails' t.references / t.column :x_id, :integer create
# none), so perfguard has to infer a relation from the column names
# (comments.post_id -> posts, includes(:post) / includes(:comments)).
module BulletSchema
  module_function

  def create!
    ActiveRecord::Schema.verbose = false
    ActiveRecord::Schema.define(version: 1) do
      create_table :addresses, force: true do |t|
        t.column :name, :string
        t.column :company_id, :integer
      end
      create_table :authors, force: true do |t|
        t.string :name
      end
      create_table :base_users, force: true do |t|
        t.column :name, :string
        t.column :type, :string
        t.column :newspaper_id, :integer
      end
      create_table :categories, force: true do |t|
        t.column :name, :string
      end
      create_table :cities, force: true do |t|
        t.string :name
        t.integer :country_id
      end
      create_table :clients, force: true do |t|
        t.column :name, :string
        t.column :group_id, :integer
      end
      create_table :comments, force: true do |t|
        t.column :name, :string
        t.column :post_id, :integer
        t.column :author_id, :integer
      end
      create_table :companies, force: true do |t|
        t.column :name, :string
      end
      create_table :contacts, force: true do |t|
        t.column :name, :string
      end
      create_table :countries, force: true do |t|
        t.string :name
      end
      create_table :deals, force: true do |t|
        t.column :name, :string
        t.column :hotel_id, :integer
      end
      create_table :deals_posts, force: true do |t|
        t.column :deal_id, :integer
        t.column :post_id, :integer
      end
      create_table :documents, force: true do |t|
        t.string :name
        t.string :type
        t.integer :parent_id
        t.integer :author_id
      end
      create_table :emails, force: true do |t|
        t.column :name, :string
        t.column :contact_id, :integer
      end
      create_table :entries, force: true do |t|
        t.column :name, :string
        t.column :category_id, :integer
      end
      create_table :firms, force: true do |t|
        t.column :name, :string
      end
      create_table :groups, force: true do |t|
        t.column :name, :string
      end
      create_table :hotels, force: true do |t|
        t.column :name, :string
        t.column :location_id, :integer
      end
      create_table :locations, force: true do |t|
        t.column :name, :string
      end
      create_table :newspapers, force: true do |t|
        t.column :name, :string
      end
      create_table :people, force: true do |t|
        t.string :name
        t.integer :pets_count
      end
      create_table :pets, force: true do |t|
        t.string :name
        t.integer :person_id
      end
      create_table :posts, force: true do |t|
        t.column :name, :string
        t.column :category_id, :integer
        t.column :writer_id, :integer
        t.column :active, :boolean, default: true
      end
      create_table :relationships, force: true do |t|
        t.column :firm_id, :integer
        t.column :client_id, :integer
      end
      create_table :students, force: true do |t|
        t.column :name, :string
      end
      create_table :students_teachers, id: false, force: true do |t|
        t.column :student_id, :integer
        t.column :teacher_id, :integer
      end
      create_table :teachers, force: true do |t|
        t.column :name, :string
      end
      create_table :replies, force: true do |t|
        t.column :name, :string
        t.column :submission_id, :integer
      end
      create_table :roles, force: true do |t|
        t.column :name, :string
        t.column :resource_id, :integer
        t.column :resource_type, :string
      end
      create_table :roles_users, force: true do |t|
        t.column :role_id, :integer
        t.column :user_id, :integer
      end
      create_table :submissions, force: true do |t|
        t.column :name, :string
        t.column :user_id, :integer
      end
      create_table :users, force: true do |t|
        t.column :name, :string
        t.column :category_id, :integer
      end
      create_table :attachments, force: true do |t|
        t.column :file_name, :string
        t.column :submission_id, :integer
      end
    end
  end
end
