# frozen_string_literal: true

# Bullet's seed (spec/support/sqlite_seed.rb, seed_db): the same records,
# created through the same associations, in the same order, so ids are the
# same as in Bullet's runs (PostgreSQL sequences start at 1).
#
# Ids that the cases rely on:
#   posts       1 'first' (category 1, writer 1), 2 'like first' (category 1,
#               writer 2, draft), 3 'second' and 4 'third' (category 2, writer 2)
#   comments    post 1: 4, post 2: 2, post 3: 3, post 4: none
#   base_users  1 and 2 are Writers (newspapers 1, 2); 3 and 4 plain BaseUsers
#   documents   folders 1, 2; pages 3, 4 (author 1), 5, 6 (author 2)
#   roles       1 'Admin', 2 'User', resource NULL (polymorphic cases set it)
module BulletSeed
  module_function

  def seed!
    first_paper = Newspaper.create(name: 'First Newspaper')
    second_paper = Newspaper.create(name: 'Second Newspaper')

    writer1 = Writer.create(name: 'first', newspaper: first_paper)
    writer2 = Writer.create(name: 'second', newspaper: second_paper)
    user1 = BaseUser.create(name: 'third', newspaper: first_paper)
    user2 = BaseUser.create(name: 'fourth', newspaper: second_paper)

    category1 = Category.create(name: 'first')
    category2 = Category.create(name: 'second')

    post1 = category1.posts.create(name: 'first', writer: writer1)
    post1a = category1.posts.create(name: 'like first', writer: writer2, active: false)
    post2 = category2.posts.create(name: 'second', writer: writer2)
    category2.posts.create(name: 'third', writer: writer2)

    deal1 = Deal.new(name: 'Deal 1')
    deal1.posts << post1
    deal1.posts << post2
    deal2 = Deal.new(name: 'Deal 2')
    post1.deals << deal1
    post1.deals << deal2

    post1.comments.create(name: 'first', author: writer1)
    post1.comments.create(name: 'first2', author: writer1)
    post1.comments.create(name: 'first3', author: writer1)
    post1.comments.create(name: 'second', author: writer2)
    post1a.comments.create(name: 'like first 1', author: writer1)
    post1a.comments.create(name: 'like first 2', author: writer2)
    post2.comments.create(name: 'third', author: user1)
    post2.comments.create(name: 'fourth', author: user2)
    post2.comments.create(name: 'fourth', author: writer1)

    category1.entries.create(name: 'first')
    category1.entries.create(name: 'second')

    student1 = Student.create(name: 'first')
    student2 = Student.create(name: 'second')
    teacher1 = Teacher.create(name: 'first')
    teacher2 = Teacher.create(name: 'second')
    student1.teachers = [teacher1, teacher2]
    student2.teachers = [teacher1, teacher2]
    teacher1.students << student1
    teacher2.students << student2

    firm1 = Firm.create(name: 'first')
    firm2 = Firm.create(name: 'second')
    group1 = Group.create(name: 'first')
    group2 = Group.create(name: 'second')
    client1 = Client.create(name: 'first', group: group1)
    client2 = Client.create(name: 'second', group: group2)
    firm1.clients = [client1, client2]
    firm2.clients = [client1, client2]
    client1.firms << firm1
    client2.firms << firm2

    company1 = Company.create(name: 'first')
    company2 = Company.create(name: 'second')
    Address.create(name: 'first', company: company1)
    Address.create(name: 'second', company: company2)

    country1 = Country.create(name: 'first')
    country2 = Country.create(name: 'second')
    country1.cities.create(name: 'first')
    country1.cities.create(name: 'second')
    country2.cities.create(name: 'third')
    country2.cities.create(name: 'fourth')

    person1 = Person.create(name: 'first')
    person2 = Person.create(name: 'second')
    person1.pets.create(name: 'first')
    person1.pets.create(name: 'second')
    person2.pets.create(name: 'third')
    person2.pets.create(name: 'fourth')

    author1 = Author.create(name: 'author1')
    author2 = Author.create(name: 'author2')
    folder1 = Folder.create(name: 'folder1', author_id: author1.id)
    folder2 = Folder.create(name: 'folder2', author_id: author2.id)
    Page.create(name: 'page1', parent_id: folder1.id, author_id: author1.id)
    Page.create(name: 'page2', parent_id: folder1.id, author_id: author1.id)
    Page.create(name: 'page3', parent_id: folder2.id, author_id: author2.id)
    Page.create(name: 'page4', parent_id: folder2.id, author_id: author2.id)

    role1 = Role.create(name: 'Admin')
    role2 = Role.create(name: 'User')

    user1 = User.create(name: 'user1', category: category1)
    user2 = User.create(name: 'user2', category: category1)
    user1.roles << role1
    user1.roles << role2
    user2.roles << role2

    submission1 = user1.create_submission(name: 'submission1')
    submission2 = user2.create_submission(name: 'submission2')
    submission1.replies.create(name: 'reply1')
    submission1.replies.create(name: 'reply2')
    submission2.replies.create(name: 'reply3')
    submission2.replies.create(name: 'reply4')
    submission1.create_attachment(file_name: 'submission1 file')
    submission2.create_attachment(file_name: 'submission2 file')
  end
end
