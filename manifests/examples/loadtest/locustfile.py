"""Shoppers for the demo API: browsers, searchers and buyers in the proportions of a shop's traffic.

The demo API (go-httpbin) echoes any path under /anything/, so these requests cost it about the same
as a small API's; what matters to the autoscaler is the request rate and its shape over time.
"""

import random

from locust import HttpUser, LoadTestShape, between, task

PRODUCTS = range(1, 501)
QUERIES = ["shoes", "t-shirt", "jacket", "socks", "backpack", "cap", "hoodie", "gift card"]


class Browser(HttpUser):
    """Looks at category pages and products; most visitors do only this."""

    weight = 6
    wait_time = between(1, 4)

    @task(3)
    def category(self):
        self.client.get(f"/anything/categories/{random.randint(1, 12)}?page={random.randint(1, 5)}",
                        name="/categories/[id]")

    @task(5)
    def product(self):
        self.client.get(f"/anything/products/{random.choice(PRODUCTS)}", name="/products/[id]")


class Searcher(HttpUser):
    """Searches, filters, then opens a result."""

    weight = 3
    wait_time = between(2, 6)

    @task
    def search(self):
        query = random.choice(QUERIES)
        self.client.get("/anything/search", params={"q": query}, name="/search")
        self.client.get("/anything/search", params={"q": query, "sort": "price", "page": 2}, name="/search")
        self.client.get(f"/anything/products/{random.choice(PRODUCTS)}", name="/products/[id]")


class Buyer(HttpUser):
    """Adds to the cart and checks out: few users, the heaviest requests."""

    weight = 1
    wait_time = between(3, 8)

    @task
    def checkout(self):
        cart = [{"product": random.choice(PRODUCTS), "quantity": random.randint(1, 3)} for _ in range(3)]
        self.client.post("/anything/cart", json={"lines": cart}, name="/cart")
        self.client.post("/anything/checkout", json={"lines": cart, "payment": "card"}, name="/checkout")
        self.client.get("/anything/orders/latest", name="/orders/[id]")


class MorningRushWithSurge(LoadTestShape):
    """(end of stage in seconds, users, users started per second): a ramp, a plateau, a sudden surge
    (what a reactive autoscaler is late for), then the evening decline."""

    stages = [
        (600, 50, 1),
        (1800, 150, 1),
        (2700, 150, 1),
        (3000, 400, 20),   # the surge: 250 more users within 15 seconds
        (3900, 400, 1),
        (4800, 80, 2),
    ]

    def tick(self):
        elapsed = self.get_run_time()
        for end, users, rate in self.stages:
            if elapsed < end:
                return users, rate
        return None  # stop the test
