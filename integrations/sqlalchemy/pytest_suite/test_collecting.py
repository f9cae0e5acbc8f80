"""
Tests of perfguard_sqlalchemy's pytest fixture, run by e2e_checks.py, which
checks how each one ended (some fail on purpose).
"""
from sqlalchemy import Column, ForeignKey, Integer, String, func
from sqlalchemy.orm import declarative_base, joinedload, relationship, selectinload

from perfguard_sqlalchemy import tagged

Base = declarative_base()


class Author(Base):
    __tablename__ = 'author'
    id = Column(Integer, primary_key=True)
    name = Column(String, nullable=False)
    posts = relationship('Post', back_populates='author', lazy='select')


class Post(Base):
    __tablename__ = 'post'
    id = Column(Integer, primary_key=True)
    author_id = Column(Integer, ForeignKey('author.id'), nullable=False)
    title = Column(String, nullable=False)
    author = relationship('Author', back_populates='posts', lazy='select')


def test_three_n_plus_ones(session):
    # one request with three N+1s: each post's author, each author's posts and post count
    with tagged(route='/three', controller='posts.three'):
        [p.author.name for p in session.query(Post).order_by(Post.id)]
        [len(a.posts) for a in session.query(Author).order_by(Author.id)]
        [session.query(func.count(Post.id)).filter(Post.author_id == a.id).scalar()
         for a in session.query(Author).order_by(Author.id)]


def test_three_fixed(session):
    with tagged(route='/three-fixed', controller='posts.three'):
        [p.author.name for p in session.query(Post).options(joinedload(Post.author))]
        [len(a.posts) for a in session.query(Author).options(selectinload(Author.posts))]
        counts = dict(session.query(Post.author_id, func.count(Post.id)).group_by(Post.author_id))
        [counts.get(a.id, 0) for a in session.query(Author).order_by(Author.id)]


def test_n_plus_one_in_the_test_body(session):
    [p.author.name for p in session.query(Post).order_by(Post.id)]


def test_fails_on_its_own(session):
    with tagged(route='/own'):
        [p.author.name for p in session.query(Post).order_by(Post.id)]
    assert False, 'failed on its own'


def test_after_a_failure(session):
    assert session.execute(func.count().select().select_from(
        func.perfguard.collected())).scalar() == 0


class TestDuplicates:
    perfguard_collect = ('n_plus_one', 'duplicate')
    perfguard_max_queries = 5

    def test_duplicates_and_too_many(self, session):
        with tagged(route='/dup'):
            for _ in range(6):
                session.query(Author).order_by(Author.id).first()


class TestNotCollecting:
    perfguard_collect = ()

    def test_three_n_plus_ones(self, session):
        test_three_n_plus_ones(session)
