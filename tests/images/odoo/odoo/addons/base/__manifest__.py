{
    'name': 'Base',
    'version': '1.3',
    'depends': [],
    'data': [],
    'installable': True,
    'auto_install': True,
}
