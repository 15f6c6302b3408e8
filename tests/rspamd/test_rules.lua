-- Rules for the tests' rspamd (rspamd_fixture.py): each decides by the X-Test-Verdict header,
-- so a test picks rspamd's answer with one header line.

local function verdict(task)
  return task:get_header('X-Test-Verdict')
end

-- 7 points: above "add header" (6), below "reject" (15).
rspamd_config:register_symbol{
  name = 'MR_TEST_SUSPICIOUS', score = 7.0,
  callback = function(task) return verdict(task) == 'suspicious' end,
}

-- 11 points: above "rewrite subject" (10).
rspamd_config:register_symbol{
  name = 'MR_TEST_REWRITE', score = 11.0,
  callback = function(task) return verdict(task) == 'rewrite' end,
}

-- 20 points: rejected by score (GTUBE is rejected by rspamd itself).
rspamd_config:register_symbol{
  name = 'MR_TEST_SPAM', score = 20.0,
  callback = function(task) return verdict(task) == 'spam' end,
}

rspamd_config:register_symbol{
  name = 'MR_TEST_SOFT', type = 'prefilter', priority = 10,
  callback = function(task)
    if verdict(task) == 'soft' then
      task:set_pre_result('soft reject', 'try again later (test)')
    end
  end,
}

-- Fires (7 points, so the message comes out marked with this symbol's name) only when the
-- envelope mailroster passed on matches X-Test-Expect: "<mail from> <rcpt,rcpt> <ip> <helo>".
rspamd_config:register_symbol{
  name = 'MR_TEST_ENVELOPE', score = 7.0,
  callback = function(task)
    if verdict(task) ~= 'envelope' then return false end
    local from = task:get_from('smtp')
    local rcpts = {}
    for _, r in ipairs(task:get_recipients('smtp') or {}) do table.insert(rcpts, r.addr) end
    local seen = string.format('%s %s %s %s', from and from[1] and from[1].addr or '',
      table.concat(rcpts, ','), tostring(task:get_from_ip()), task:get_helo() or '')
    local expected = task:get_header('X-Test-Expect')
    if seen ~= expected then
      rspamd_logger.errx(task, 'envelope seen "%s", expected "%s"', seen, expected)
      return false
    end
    return true
  end,
}
