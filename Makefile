# Shortcuts; every target is a plain npm or docker command.
.PHONY: install start test bench token up down

install:
	npm ci

start:
	npm start

test:
	npm test

bench:
	npm run bench

# A development token for user 42 with the admin role (embedded default secret or JWT_SECRET).
token:
	@npx rowcast token --sub 42 --role admin

up:
	docker compose up --build

down:
	docker compose down
