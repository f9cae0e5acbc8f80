"""The tables of ../../schema.sql (created by run_e2e.sh, not by migrations)."""
from django.db import models


class Author(models.Model):
    name = models.TextField()

    class Meta:
        managed = False
        db_table = 'pf_author'


class Tag(models.Model):
    name = models.TextField()

    class Meta:
        managed = False
        db_table = 'pf_tag'


class BookTag(models.Model):
    book = models.ForeignKey('Book', on_delete=models.CASCADE)
    tag = models.ForeignKey(Tag, on_delete=models.CASCADE)

    class Meta:
        managed = False
        db_table = 'pf_book_tags'


class Book(models.Model):
    author = models.ForeignKey(Author, on_delete=models.CASCADE)
    title = models.TextField()
    tags = models.ManyToManyField(Tag, through=BookTag)

    class Meta:
        managed = False
        db_table = 'pf_book'


class Hit(models.Model):
    route = models.TextField()
    n = models.IntegerField()

    class Meta:
        managed = False
        db_table = 'pf_hit'
