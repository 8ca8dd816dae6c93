"""A Flask app for test_requests.py: route templates as Flask gives them
(request.url_rule), and a 404 that has none."""
from flask import Flask

app = Flask(__name__)


@app.route("/user/<int:uid>")
def user(uid):
    return "user %d\n" % uid


@app.route("/items/<name>", methods=["GET", "POST"])
def item(name):
    return "item %s\n" % name
