# rowcast on Node 20 (Debian 12: the uWebSockets.js binary needs its glibc).
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json tsconfig.json tsconfig.build.json ./
COPY packages ./packages
COPY scripts ./scripts
COPY src ./src
COPY migrations ./migrations
COPY inspector ./inspector
RUN npm ci && npm prune --omit=dev

FROM node:20-bookworm-slim
WORKDIR /app
ENV NODE_ENV=production
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules ./node_modules
# node_modules/@rowcast/client links here: the inspector serves its bundle.
COPY --from=build /app/packages/client/package.json ./packages/client/package.json
COPY --from=build /app/packages/client/dist ./packages/client/dist
COPY --from=build /app/dist ./dist
COPY --from=build /app/inspector ./inspector
USER node
EXPOSE 6336
CMD ["node", "dist/src/cli/main.js", "serve"]
