"""
The models of nplusone's SQLAlchemy tests (tests/utils.py, make_models), for
SQLAlchemy 1.4 on PostgreSQL:

    User.addresses   one-to-many (Address.user is its many-to-one backref)
    User.hobbies     many-to-many through users_hobbies (Hobby.users)

The user table is "user" (a reserved word, always quoted) with its key in
the column user_id; the foreign keys are declared, so perfguard can name the
relations from the catalog.
"""
import sqlalchemy as sa
from sqlalchemy.orm import declarative_base, relationship

Base = declarative_base()

users_hobbies = sa.Table(
    'users_hobbies', Base.metadata,
    sa.Column('user_id', sa.Integer, sa.ForeignKey('user.user_id')),
    sa.Column('hobby_id', sa.Integer, sa.ForeignKey('hobby.id')),
)


class User(Base):
    __tablename__ = 'user'
    id = sa.Column('user_id', sa.Integer, primary_key=True)
    addresses = relationship('Address', backref='user')
    hobbies = relationship('Hobby', secondary=users_hobbies, backref='users')


class Address(Base):
    __tablename__ = 'address'
    id = sa.Column(sa.Integer, primary_key=True)
    user_id = sa.Column(sa.Integer, sa.ForeignKey('user.user_id'))


class Hobby(Base):
    __tablename__ = 'hobby'
    id = sa.Column(sa.Integer, primary_key=True)
