# Shortcuts; every target is a plain npm or docker command.
.PHONY: install start test bench token env up down

install:
	npm ci

start:
	npm start

test:
	npm test

bench:
	npm run bench

# A development token for user 42 with the admin role (JWT_SECRET, or the secret the server made in .rowcast/ on its first start).
token:
	@npx rowcast token --sub 42 --role admin

# .env with random secrets for docker-compose.yml (kept if it exists; docker compose reads it).
env:
	@test -f .env && echo ".env exists: kept" || node -e "const r=()=>require('crypto').randomBytes(32).toString('hex');require('fs').writeFileSync('.env',['JWT_SECRET','POSTGRES_PASSWORD','REDIS_PASSWORD','CLUSTER_SECRET'].map(k=>k+'='+r()).join('\n')+'\n',{mode:0o600,flag:'wx'});console.log('wrote .env with random secrets')"

up: env
	docker compose up --build

down:
	docker compose down
