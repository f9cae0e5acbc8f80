"""Models of the example: the shapes that produce the classic ORM traps."""
from django.db import models


class Author(models.Model):
    name = models.CharField(max_length=100)

    def __str__(self):
        return self.name


class Publisher(models.Model):
    name = models.CharField(max_length=100)

    def __str__(self):
        return self.name


class Tag(models.Model):
    name = models.CharField(max_length=50, unique=True)

    def __str__(self):
        return self.name


class Essay(models.Model):
    title = models.CharField(max_length=200)
    body = models.TextField()
    created_by = models.ForeignKey(Author, on_delete=models.CASCADE, related_name='essays')
    publisher = models.ForeignKey(Publisher, on_delete=models.CASCADE, related_name='essays')
    tags = models.ManyToManyField(Tag, related_name='essays', blank=True)

    def __str__(self):
        return self.title


class Scene(models.Model):
    essay = models.ForeignKey(Essay, on_delete=models.CASCADE, related_name='scenes')
    title = models.CharField(max_length=200)
    estimated_seconds = models.IntegerField(default=0)

    def __str__(self):
        return self.title


# A list view over three relations, as a fresh Django project writes it:
# default related names (post_set, comment_set), a plain many-to-many.
class Post(models.Model):
    title = models.CharField(max_length=200)
    author = models.ForeignKey(Author, on_delete=models.CASCADE)
    tags = models.ManyToManyField(Tag, blank=True)

    def __str__(self):
        return self.title


class Comment(models.Model):
    post = models.ForeignKey(Post, on_delete=models.CASCADE)
    body = models.TextField()

    def __str__(self):
        return self.body[:40]
