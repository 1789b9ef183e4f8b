def test_pg(postgres_url):
    import psycopg
    with psycopg.connect(postgres_url) as c:
        print(c.execute("select version()").fetchone())
    open("/tmp/pgt/url","w").write(postgres_url)
