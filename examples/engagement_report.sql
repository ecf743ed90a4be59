-- Engagement per user, from the tables `connector-run sync jsonplaceholder
-- users posts comments` writes into data/jsonplaceholder.db:
--
--     sqlite3 data/jsonplaceholder.db < examples/engagement_report.sql
--
-- or from the Parquet files of `--dest parquet:out`, in DuckDB (standard
-- SQL, so it runs unchanged in both):
--
--     duckdb -c "CREATE VIEW users AS FROM 'out/users.parquet';
--                CREATE VIEW posts AS FROM 'out/posts.parquet';
--                CREATE VIEW comments AS FROM 'out/comments.parquet';
--                .read examples/engagement_report.sql"
--
-- Engagement is the number of comments on a user's posts.
.headers on
.mode column

DROP VIEW IF EXISTS temp.engagement;
CREATE TEMP VIEW engagement AS
WITH per_post AS (
  SELECT p.id AS post_id, p.userId AS user_id, count(c.id) AS comments
  FROM posts AS p
  LEFT JOIN comments AS c ON c.postId = p.id
  GROUP BY p.id, p.userId
)
SELECT u.id AS user_id,
       u.username AS username,
       u.name AS name,
       count(pp.post_id) AS posts,
       coalesce(sum(pp.comments), 0) AS comments,
       round(coalesce(avg(pp.comments), 0.0), 2) AS comments_per_post
FROM users AS u
LEFT JOIN per_post AS pp ON pp.user_id = u.id
GROUP BY u.id, u.username, u.name;

.print 'Per user'
SELECT user_id, username, name, posts, comments, comments_per_post
FROM engagement
ORDER BY user_id;

.print ''
.print 'Top 5 most engaged users'
SELECT row_number() OVER (ORDER BY comments DESC, comments_per_post DESC, user_id) AS rank,
       username, name, comments, posts, comments_per_post
FROM engagement
ORDER BY rank
LIMIT 5;
